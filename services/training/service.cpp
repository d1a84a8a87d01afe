#include "services/training/service.hpp"

#include <spdlog/spdlog.h>

#include <thread>

#include "common/bus/channels.hpp"
#include "common/grpc_server/request_context.hpp"
#include "services/training/convert.hpp"
#include "services/training/storage/pg_read.hpp"

namespace labelloop::training {
namespace {

grpc::Status Invalid(const std::string& m) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, m);
}
grpc::Status NotFound(const std::string& m) { return grpc::Status(grpc::StatusCode::NOT_FOUND, m); }

// Runs a handler body; library exceptions become UNAVAILABLE/INTERNAL, never escape.
template <typename Fn>
grpc::Status Guard(const char* what, Fn&& fn) {
  try {
    return fn();
  } catch (const pqxx::broken_connection& e) {
    spdlog::error("{}: PostgreSQL unreachable: {}", what, e.what());
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the database is unreachable; retry");
  } catch (const pg::PoolExhausted& e) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the service is busy; retry");
  } catch (const std::exception& e) {
    spdlog::error("{}: {}", what, e.what());
    return grpc::Status(grpc::StatusCode::INTERNAL, std::string(what) + " failed: " + e.what());
  }
}

bool Terminal(const std::string& state) {
  return state == "SUCCEEDED" || state == "FAILED" || state == "CANCELLED";
}

}  // namespace

TrainingServiceImpl::TrainingServiceImpl(const bootstrap::Runtime& runtime, storage::Store& store,
                                         redis::Client& redis, JobRules rules, int watch_poll_ms)
    : runtime_(runtime),
      store_(store),
      redis_(redis),
      rules_(rules),
      watch_poll_ms_(watch_poll_ms) {}

grpc::Status TrainingServiceImpl::GetInfo(grpc::ServerContext* context,
                                          const v1::GetInfoRequest* /*request*/,
                                          v1::ServiceInfo* reply) {
  grpc_server::RequestScope scope(context);
  runtime_.FillInfo(reply);
  return grpc::Status::OK;
}

grpc::Status TrainingServiceImpl::StartTraining(grpc::ServerContext* context,
                                                const v1::StartTrainingRequest* request,
                                                v1::StartTrainingResponse* reply) {
  grpc_server::RequestScope scope(context);
  if (request->project_id() <= 0) return Invalid("project_id: required (a positive id)");
  std::string error;
  auto partial = SpecFromProto(request->spec(), &error);
  if (!error.empty()) return Invalid(error);
  return Guard("StartTraining", [&] {
    auto r = StartJob(store_, redis_, rules_, request->project_id(), partial, "manual");
    using C = StartResult::Code;
    switch (r.code) {
      case C::kOk:
        break;
      case C::kInvalidSpec:
        return Invalid(r.message);
      case C::kNoProject:
        return NotFound(r.message);
      case C::kTooFewLabels:
        return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, r.message);
      case C::kAlreadyLive:
        return grpc::Status(grpc::StatusCode::ALREADY_EXISTS, r.message);
    }
    reply->set_job_id(r.job_id);
    SpecToProto(r.spec, reply->mutable_spec());
    spdlog::info("training job {} queued for project {}", r.job_id, request->project_id());
    return grpc::Status::OK;
  });
}

grpc::Status TrainingServiceImpl::GetTrainingJob(grpc::ServerContext* context,
                                                 const v1::GetTrainingJobRequest* request,
                                                 v1::TrainingJob* reply) {
  grpc_server::RequestScope scope(context);
  return Guard("GetTrainingJob", [&] {
    auto job = store_.GetJob(request->job_id());
    if (!job) return NotFound("job " + std::to_string(request->job_id()) + " does not exist");
    JobToProto(*job, reply);
    for (const auto& e : store_.Epochs(job->id)) EpochToProto(e, reply->add_history());
    return grpc::Status::OK;
  });
}

grpc::Status TrainingServiceImpl::ListTrainingJobs(grpc::ServerContext* context,
                                                   const v1::ListTrainingJobsRequest* request,
                                                   v1::ListTrainingJobsResponse* reply) {
  grpc_server::RequestScope scope(context);
  if (request->limit() < 0 || request->limit() > 1000) return Invalid("limit: 0..1000");
  return Guard("ListTrainingJobs", [&] {
    for (const auto& job :
         store_.ListJobs(request->project_id(), request->limit() ? request->limit() : 50)) {
      JobToProto(job, reply->add_jobs());
    }
    return grpc::Status::OK;
  });
}

grpc::Status TrainingServiceImpl::CancelTraining(grpc::ServerContext* context,
                                                 const v1::CancelTrainingRequest* request,
                                                 v1::TrainingJob* reply) {
  grpc_server::RequestScope scope(context);
  return Guard("CancelTraining", [&] {
    auto job = store_.Cancel(request->job_id());
    if (!job) return NotFound("job " + std::to_string(request->job_id()) + " does not exist");
    if (Terminal(job->state) && !(job->state == "CANCELLED")) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "job " + std::to_string(job->id) + " already ended: " + job->state);
    }
    // The worker running it hears this at once; the lease heartbeat is the fallback.
    redis_.Publish(bus::kTrainingJobs, nlohmann::json({{"type", "training.cancel"},
                                                       {"version", 1},
                                                       {"job_id", job->id},
                                                       {"project_id", job->project_id}})
                                           .dump());
    JobToProto(*job, reply);
    return grpc::Status::OK;
  });
}

grpc::Status TrainingServiceImpl::WatchTraining(grpc::ServerContext* context,
                                                const v1::WatchTrainingRequest* request,
                                                grpc::ServerWriter<v1::TrainingProgress>* writer) {
  grpc_server::RequestScope scope(context);
  return Guard("WatchTraining", [&] {
    auto job = store_.GetJob(request->job_id());
    if (!job) return NotFound("job " + std::to_string(request->job_id()) + " does not exist");
    std::string sent_state;
    int sent_attempts = -1;
    int sent_epoch = 0;
    for (;;) {
      if (context->IsCancelled()) return grpc::Status::CANCELLED;
      if (job->attempts != sent_attempts) sent_epoch = 0;  // a new attempt starts over
      for (const auto& e : store_.Epochs(job->id)) {
        if (e.epoch <= sent_epoch) continue;
        v1::TrainingProgress p;
        p.set_job_id(job->id);
        p.set_state(v1::TRAINING_JOB_STATE_RUNNING);
        p.set_epoch(e.epoch);
        p.set_epochs(job->epochs);
        p.set_attempts(job->attempts);
        EpochToProto(e, p.mutable_epoch_metrics());
        if (!writer->Write(p)) return grpc::Status::CANCELLED;
        sent_epoch = e.epoch;
      }
      if (job->state != sent_state || job->attempts != sent_attempts) {
        v1::TrainingProgress p;
        p.set_job_id(job->id);
        p.set_state(StateToProto(job->state));
        p.set_epoch(job->epoch);
        p.set_epochs(job->epochs);
        p.set_message(job->message);
        p.set_model_id(job->model_id);
        p.set_attempts(job->attempts);
        if (!writer->Write(p)) return grpc::Status::CANCELLED;
        sent_state = job->state;
        sent_attempts = job->attempts;
      }
      if (Terminal(job->state)) return grpc::Status::OK;
      if (draining_) {
        return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                            "the server is shutting down; watch again on another replica");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(watch_poll_ms_));
      job = store_.GetJob(request->job_id());
      if (!job) return NotFound("job " + std::to_string(request->job_id()) + " was deleted");
    }
  });
}

void TrainingServiceImpl::PolicyToProto(const storage::Policy& p, v1::RetrainPolicy* out) {
  out->set_project_id(p.project_id);
  out->set_retrain_every(p.retrain_every);
  out->set_labels_at_last_job(p.labels_at_last_job);
  std::string error;
  auto resolved = ResolveSpec(PartialFromJson(p.spec, &error));
  if (error.empty() && resolved.ok()) SpecToProto(resolved.spec, out->mutable_spec());
}

grpc::Status TrainingServiceImpl::SetRetrainPolicy(grpc::ServerContext* context,
                                                   const v1::SetRetrainPolicyRequest* request,
                                                   v1::RetrainPolicy* reply) {
  grpc_server::RequestScope scope(context);
  if (request->project_id() <= 0) return Invalid("project_id: required (a positive id)");
  if (request->retrain_every() < 0) return Invalid("retrain_every: must be >= 0 (0 = off)");
  std::string error;
  auto partial = SpecFromProto(request->spec(), &error);
  if (!error.empty()) return Invalid(error);
  auto resolved = ResolveSpec(partial);
  if (!resolved.ok()) return Invalid(resolved.error);
  return Guard("SetRetrainPolicy", [&] {
    if (!storage::LoadProject(store_.pool(), request->project_id())) {
      return NotFound("project " + std::to_string(request->project_id()) + " does not exist");
    }
    auto policy = store_.SetPolicy(request->project_id(), request->retrain_every(),
                                   SpecToJson(resolved.spec));
    PolicyToProto(policy, reply);
    return grpc::Status::OK;
  });
}

grpc::Status TrainingServiceImpl::GetRetrainPolicy(grpc::ServerContext* context,
                                                   const v1::GetRetrainPolicyRequest* request,
                                                   v1::RetrainPolicy* reply) {
  grpc_server::RequestScope scope(context);
  return Guard("GetRetrainPolicy", [&] {
    PolicyToProto(store_.GetPolicy(request->project_id()), reply);
    return grpc::Status::OK;
  });
}

grpc::Status TrainingServiceImpl::ListModels(grpc::ServerContext* context,
                                             const v1::ListModelsRequest* request,
                                             v1::ListModelsResponse* reply) {
  grpc_server::RequestScope scope(context);
  return Guard("ListModels", [&] {
    for (const auto& m : store_.ListModels(request->project_id())) {
      ModelRowToProto(m, reply->add_models());
    }
    return grpc::Status::OK;
  });
}

grpc::Status TrainingServiceImpl::GetModel(grpc::ServerContext* context,
                                           const v1::GetModelRequest* request,
                                           v1::ModelInfo* reply) {
  grpc_server::RequestScope scope(context);
  return Guard("GetModel", [&] {
    auto m = store_.GetModel(request->model_id(), request->include_model());
    if (!m) return NotFound("model " + std::to_string(request->model_id()) + " does not exist");
    ModelRowToProto(*m, reply);
    if (m->job_id) {
      for (const auto& e : store_.Epochs(m->job_id)) EpochToProto(e, reply->add_history());
    }
    if (request->include_model()) {
      reply->set_model_json(m->model_json);
      if (!reply->mutable_model()->ParseFromString(m->model_proto)) {
        return grpc::Status(grpc::StatusCode::INTERNAL, "stored model_proto is unreadable");
      }
    }
    return grpc::Status::OK;
  });
}

std::shared_ptr<const PortableModel> TrainingServiceImpl::LoadModel(int64_t model_id, int* version,
                                                                    int64_t* project_id) {
  {
    std::lock_guard lock(cache_mu_);
    auto it = cache_.find(model_id);
    if (it != cache_.end()) {
      *version = it->second.version;
      *project_id = it->second.project_id;
      return it->second.model;
    }
  }
  auto row = store_.GetModel(model_id, /*with_body=*/true);
  if (!row) return nullptr;
  std::string error;
  auto parsed = ModelFromJson(nlohmann::json::parse(row->model_json), &error);
  if (!parsed) throw std::runtime_error("stored model " + std::to_string(model_id) + ": " + error);
  auto shared = std::make_shared<const PortableModel>(std::move(*parsed));
  std::lock_guard lock(cache_mu_);
  if (cache_.size() >= 16) cache_.erase(cache_.begin());
  cache_[model_id] = {shared, row->version, row->project_id};
  *version = row->version;
  *project_id = row->project_id;
  return shared;
}

grpc::Status TrainingServiceImpl::Predict(grpc::ServerContext* context,
                                          const v1::PredictRequest* request,
                                          v1::PredictResponse* reply) {
  grpc_server::RequestScope scope(context);
  if (request->item_ids_size() + request->vectors_size() == 0) {
    return Invalid("item_ids or vectors: give at least one item or feature vector");
  }
  if (request->item_ids_size() + request->vectors_size() > 100000) {
    return Invalid("item_ids + vectors: at most 100000 per call");
  }
  return Guard("Predict", [&] {
    int64_t model_id = request->model_id();
    if (model_id == 0) {
      if (request->project_id() <= 0) return Invalid("model_id or project_id: one is required");
      auto latest = store_.LatestModel(request->project_id());
      if (!latest) {
        return NotFound("project " + std::to_string(request->project_id()) + " has no model yet");
      }
      model_id = *latest;
    }
    int version = 0;
    int64_t project_id = 0;
    auto model = LoadModel(model_id, &version, &project_id);
    if (!model) return NotFound("model " + std::to_string(model_id) + " does not exist");
    const int dim = model->feature_dim;
    const auto n = request->item_ids_size() + request->vectors_size();
    Eigen::MatrixXf x(dim, n);
    std::vector<int64_t> ids(static_cast<size_t>(n), 0);
    if (request->item_ids_size() > 0) {
      std::map<int64_t, std::vector<float>> found;
      store_.pool().Run([&](pqxx::connection& c) {
        pqxx::read_transaction tx(c);
        std::string list = "{";
        for (int i = 0; i < request->item_ids_size(); ++i) {
          list += (i ? "," : "") + std::to_string(request->item_ids(i));
        }
        list += "}";
        auto r = tx.exec_params(
            "SELECT item_id, features FROM labeling.v_items WHERE project_id = $1 AND "
            "item_id = ANY($2::bigint[])",
            project_id, list);
        for (const auto& row : r) {
          std::vector<float> f;
          if (storage::ParseRealArray(std::string_view(row[1].c_str(), row[1].size()), &f)) {
            found[row[0].as<int64_t>()] = std::move(f);
          }
        }
        return 0;
      });
      for (int i = 0; i < request->item_ids_size(); ++i) {
        auto it = found.find(request->item_ids(i));
        if (it == found.end()) {
          return Invalid("item_ids[" + std::to_string(i) + "]: item " +
                         std::to_string(request->item_ids(i)) + " is not an item of project " +
                         std::to_string(project_id));
        }
        if (static_cast<int>(it->second.size()) != dim) {
          return Invalid("item_ids[" + std::to_string(i) + "]: the item has " +
                         std::to_string(it->second.size()) + " features, the model expects " +
                         std::to_string(dim));
        }
        x.col(i) = Eigen::Map<const Eigen::VectorXf>(it->second.data(), dim);
        ids[static_cast<size_t>(i)] = request->item_ids(i);
      }
    }
    for (int v = 0; v < request->vectors_size(); ++v) {
      const auto& values = request->vectors(v).values();
      if (values.size() != dim) {
        return Invalid("vectors[" + std::to_string(v) + "]: has " + std::to_string(values.size()) +
                       " values, the model expects " + std::to_string(dim));
      }
      for (int f = 0; f < dim; ++f) {
        if (!std::isfinite(values[f])) {
          return Invalid("vectors[" + std::to_string(v) + "].values[" + std::to_string(f) +
                         "]: not a finite number");
        }
      }
      x.col(request->item_ids_size() + v) = Eigen::Map<const Eigen::VectorXf>(values.data(), dim);
    }
    const Eigen::MatrixXf p = PredictProbabilities(*model, x);
    reply->set_model_id(model_id);
    reply->set_model_version(version);
    for (const auto& c : model->classes) reply->add_classes(c);
    for (Eigen::Index i = 0; i < n; ++i) {
      auto* r = reply->add_results();
      r->set_item_id(ids[static_cast<size_t>(i)]);
      for (Eigen::Index c = 0; c < p.rows(); ++c) r->add_probabilities(p(c, i));
      for (auto& name : PredictedClasses(*model, p.col(i))) r->add_predicted(name);
    }
    return grpc::Status::OK;
  });
}

}  // namespace labelloop::training
