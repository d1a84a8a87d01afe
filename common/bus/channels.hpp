// The Redis pub/sub channels and their JSON payloads (each has "type" and "version").
// A message is never the only copy of work: the state change is committed in
// PostgreSQL first, and listeners also reconcile from PostgreSQL on start and on a timer.
#pragma once

namespace labelloop::bus {

// {"type":"labels.submitted","version":1,"project_id":1,"item_id":2,"annotator":"ann",
//  "classes":["cat"],"item_labeled":true,"labeled_count":123}
inline constexpr const char* kLabelsSubmitted = "labelloop.labels.submitted";
// {"type":"training.job","version":1,"job_id":7,"project_id":1}
inline constexpr const char* kTrainingJobs = "labelloop.training.jobs";
// {"type":"training.progress","version":1,"job_id":7,"project_id":1,"state":"RUNNING",
//  "epoch":3,"epochs":20,"train_loss":0.4,"train_accuracy":0.9,"val_loss":0.5,"val_accuracy":0.88}
inline constexpr const char* kTrainingProgress = "labelloop.training.progress";
// {"type":"models.ready","version":1,"project_id":1,"model_id":4,"model_version":2}
inline constexpr const char* kModelsReady = "labelloop.models.ready";
// {"type":"downloads.requested","version":1,"download_id":9,"project_id":1}
inline constexpr const char* kDownloadsRequested = "labelloop.downloads.requested";
// {"type":"downloads.ready","version":1,"download_id":9,"project_id":1,"status":"AVAILABLE"}
inline constexpr const char* kDownloadsReady = "labelloop.downloads.ready";

}  // namespace labelloop::bus
