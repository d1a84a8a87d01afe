#include "services/ranking/service.hpp"

#include <spdlog/spdlog.h>

#include <unordered_set>

#include "common/grpc_server/request_context.hpp"
#include "services/ranking/scoring.hpp"

namespace labelloop::ranking {
namespace {

grpc::Status Invalid(const std::string& msg) { return {grpc::StatusCode::INVALID_ARGUMENT, msg}; }

// The strategy of a request: empty = the live order's (the project's setting).
std::optional<Strategy> RequestStrategy(const std::string& name, Strategy fallback,
                                        grpc::Status* status) {
  if (name.empty()) return fallback;
  auto s = ParseStrategy(name);
  if (!s) {
    *status = Invalid("strategy '" + name +
                      "' is unknown: use least_confidence, margin, entropy, random or "
                      "batch_diverse (or leave it empty for the project's setting)");
  }
  return s;
}

void SetTime(google::protobuf::Timestamp* ts, std::chrono::system_clock::time_point t) {
  const auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  ts->set_seconds(us / 1000000);
  ts->set_nanos(static_cast<int32_t>((us % 1000000) * 1000));
}

template <typename Fn>
grpc::Status Guard(const char* what, Fn&& fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    spdlog::error("{} failed: {}", what, e.what());
    return {grpc::StatusCode::UNAVAILABLE,
            std::string(what) + ": the database is unavailable, retry: " + e.what()};
  }
}

}  // namespace

RankingServiceImpl::RankingServiceImpl(const bootstrap::Runtime& runtime, Ranker& ranker,
                                       storage::Store& store, Builder& builder,
                                       ServiceOptions options,
                                       std::function<void(int64_t)> publish_strategy)
    : runtime_(runtime),
      ranker_(ranker),
      store_(store),
      builder_(builder),
      options_(options),
      publish_strategy_(std::move(publish_strategy)) {}

grpc::Status RankingServiceImpl::GetInfo(grpc::ServerContext* context,
                                         const v1::GetInfoRequest* /*request*/,
                                         v1::ServiceInfo* reply) {
  grpc_server::RequestScope scope(context);
  runtime_.FillInfo(reply);
  return grpc::Status::OK;
}

grpc::Status RankingServiceImpl::NextCandidates(grpc::ServerContext* context,
                                                const v1::NextCandidatesRequest* request,
                                                v1::NextCandidatesResponse* reply) {
  grpc_server::RequestScope scope(context);
  if (request->project_id() <= 0) return Invalid("project_id must be a positive id");
  if (request->n() <= 0 || request->n() > options_.max_n) {
    return Invalid("n must be between 1 and " + std::to_string(options_.max_n));
  }
  auto order = ranker_.Live(request->project_id());
  grpc::Status status;
  auto strategy =
      RequestStrategy(request->strategy(), order ? order->strategy() : kDefaultStrategy, &status);
  if (!strategy) return status;
  reply->set_has_order(order != nullptr);
  if (!order) return grpc::Status::OK;
  reply->set_model_id(order->table().model().model_id);
  reply->set_strategy(StrategyName(*strategy));
  SetTime(reply->mutable_built_at(), order->built_at());
  const std::unordered_set<int64_t> exclude(request->exclude_item_ids().begin(),
                                            request->exclude_item_ids().end());
  const auto n = static_cast<size_t>(request->n());
  std::vector<Pick> picks;
  if (*strategy == Strategy::kBatchDiverse) {
    const size_t pool_size =
        std::max(n, std::min(options_.diverse_pool_max, n * options_.diverse_pool_factor));
    auto pool = order->Next(pool_size, Strategy::kBatchDiverse, exclude);
    std::vector<int64_t> ids;
    for (const auto& p : pool) ids.push_back(p.item_id);
    std::vector<std::vector<float>> features;
    try {
      features = store_.Features(ids);
    } catch (const std::exception& e) {
      // Without features the batch is the plain uncertainty order: still a usable answer.
      spdlog::warn("batch_diverse: features unavailable, using the entropy order: {}", e.what());
      features.assign(pool.size(), {});
    }
    picks = SelectDiverse(pool, features, n);
  } else {
    picks = order->Next(n, *strategy, exclude);
  }
  for (const auto& p : picks) {
    auto* c = reply->add_candidates();
    c->set_item_id(p.item_id);
    c->set_score(p.score);
    c->set_rank(p.rank);
  }
  return grpc::Status::OK;
}

grpc::Status RankingServiceImpl::SetStrategy(grpc::ServerContext* context,
                                             const v1::SetStrategyRequest* request,
                                             v1::SetStrategyResponse* reply) {
  grpc_server::RequestScope scope(context);
  if (request->project_id() <= 0) return Invalid("project_id must be a positive id");
  auto strategy = ParseStrategy(request->strategy());
  if (!strategy) {
    return Invalid("strategy '" + request->strategy() +
                   "' is unknown: use least_confidence, margin, entropy, random or "
                   "batch_diverse");
  }
  std::optional<Aggregate> aggregate;
  if (!request->multilabel_aggregate().empty()) {
    aggregate = ParseAggregate(request->multilabel_aggregate());
    if (!aggregate) {
      return Invalid("multilabel_aggregate '" + request->multilabel_aggregate() +
                     "' is unknown: use mean or max (or leave it empty to keep it)");
    }
  }
  return Guard("SetStrategy", [&] {
    auto settings = store_.Settings(request->project_id());
    if (!settings.exists) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          "project " + std::to_string(request->project_id()) + " does not exist");
    }
    store_.SaveStrategy(request->project_id(), *strategy, aggregate);
    builder_.RequestRefresh(request->project_id());
    if (publish_strategy_) publish_strategy_(request->project_id());
    reply->set_strategy(StrategyName(*strategy));
    reply->set_multilabel_aggregate(AggregateName(aggregate.value_or(settings.aggregate)));
    return grpc::Status::OK;
  });
}

grpc::Status RankingServiceImpl::GetScores(grpc::ServerContext* context,
                                           const v1::GetScoresRequest* request,
                                           v1::GetScoresResponse* reply) {
  grpc_server::RequestScope scope(context);
  if (request->project_id() <= 0) return Invalid("project_id must be a positive id");
  if (request->item_ids_size() > 100000) return Invalid("at most 100000 item_ids per call");
  auto order = ranker_.Live(request->project_id());
  grpc::Status status;
  auto strategy =
      RequestStrategy(request->strategy(), order ? order->strategy() : kDefaultStrategy, &status);
  if (!strategy) return status;
  reply->set_has_order(order != nullptr);
  if (!order) return grpc::Status::OK;
  reply->set_model_id(order->table().model().model_id);
  reply->set_strategy(StrategyName(*strategy));
  for (int64_t id : request->item_ids()) {
    auto* s = reply->add_scores();
    s->set_item_id(id);
    if (auto pick = order->Find(id, *strategy)) {
      s->set_found(true);
      s->set_score(pick->score);
      s->set_rank(pick->rank);
    }
  }
  return grpc::Status::OK;
}

grpc::Status RankingServiceImpl::Distribution(grpc::ServerContext* context,
                                              const v1::DistributionRequest* request,
                                              v1::DistributionResponse* reply) {
  grpc_server::RequestScope scope(context);
  if (request->project_id() <= 0) return Invalid("project_id must be a positive id");
  if (request->bins() < 0 || request->bins() > 1000) return Invalid("bins must be 0..1000");
  auto order = ranker_.Live(request->project_id());
  grpc::Status status;
  auto strategy =
      RequestStrategy(request->strategy(), order ? order->strategy() : kDefaultStrategy, &status);
  if (!strategy) return status;
  reply->set_has_order(order != nullptr);
  if (!order) return grpc::Status::OK;
  reply->set_model_id(order->table().model().model_id);
  reply->set_strategy(StrategyName(*strategy));
  auto h = ranking::Distribution(*order, *strategy, request->bins() == 0 ? 20 : request->bins());
  for (const auto& b : h.bins) {
    auto* out = reply->add_bins();
    out->set_lower(b.lower);
    out->set_upper(b.upper);
    out->set_count(b.count);
  }
  reply->set_items(h.items);
  reply->set_mean(h.mean);
  return grpc::Status::OK;
}

grpc::Status RankingServiceImpl::RankInfo(grpc::ServerContext* context,
                                          const v1::RankInfoRequest* request,
                                          v1::RankInfoResponse* reply) {
  grpc_server::RequestScope scope(context);
  if (request->project_id() <= 0) return Invalid("project_id must be a positive id");
  auto order = ranker_.Live(request->project_id());
  reply->set_has_order(order != nullptr);
  if (!order) return grpc::Status::OK;
  const auto& t = order->table();
  reply->set_model_id(t.model().model_id);
  reply->set_model_version(t.model().version);
  reply->set_strategy(StrategyName(order->strategy()));
  reply->set_multilabel_aggregate(AggregateName(t.aggregate()));
  reply->set_multi_label(t.model().multi_label);
  SetTime(reply->mutable_built_at(), order->built_at());
  reply->set_items(static_cast<int64_t>(t.size()));
  reply->set_live_items(t.live());
  reply->set_rejected_items(t.rejected());
  reply->set_build_seconds(order->build_seconds());
  return grpc::Status::OK;
}

grpc::Status RankingServiceImpl::ScoreProbabilities(grpc::ServerContext* context,
                                                    const v1::ScoreProbabilitiesRequest* request,
                                                    v1::ScoreProbabilitiesResponse* reply) {
  grpc_server::RequestScope scope(context);
  auto strategy = ParseStrategy(request->strategy());
  if (!strategy) {
    return Invalid("strategy '" + request->strategy() +
                   "' is unknown: use least_confidence, margin, entropy or random");
  }
  Aggregate aggregate = Aggregate::kMean;
  if (!request->multilabel_aggregate().empty()) {
    auto a = ParseAggregate(request->multilabel_aggregate());
    if (!a) return Invalid("multilabel_aggregate must be mean or max");
    aggregate = *a;
  }
  if (request->rows_size() > 1000000) return Invalid("at most 1000000 rows per call");
  for (int i = 0; i < request->rows_size(); ++i) {
    const auto& p = request->rows(i).probabilities();
    if (auto why = CheckRow(std::span<const float>(p.data(), p.size()), request->multi_label())) {
      return Invalid("rows[" + std::to_string(i) + "]: " + *why);
    }
  }
  for (int i = 0; i < request->rows_size(); ++i) {
    const auto& p = request->rows(i).probabilities();
    const int64_t id = i;
    float out = 0;
    ScoreMatrix(*strategy, request->multi_label(), aggregate, 0, p.data(), &id, 1, p.size(), &out);
    reply->add_scores(out);
  }
  return grpc::Status::OK;
}

}  // namespace labelloop::ranking
