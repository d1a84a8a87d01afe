// Domain types <-> labelloop.v1 protobuf messages of the training API.
#pragma once

#include <string>

#include "labelloop/v1/training.pb.h"
#include "services/training/model_format.hpp"
#include "services/training/storage/store.hpp"
#include "services/training/trainer.hpp"

namespace labelloop::training {

// A caller's spec; *error names a bad enum value.
PartialSpec SpecFromProto(const v1::ModelSpec& proto, std::string* error);
void SpecToProto(const ModelSpec& spec, v1::ModelSpec* out);
void MetricsToProto(const Metrics& m, v1::ModelMetrics* out);
void EpochToProto(const EpochStats& e, v1::EpochMetrics* out);
void ModelToProto(const PortableModel& m, v1::Model* out);
v1::TrainingJobState StateToProto(const std::string& state);
void JobToProto(const storage::JobRow& job, v1::TrainingJob* out);
void ModelRowToProto(const storage::ModelRow& m, v1::ModelInfo* out);

}  // namespace labelloop::training
