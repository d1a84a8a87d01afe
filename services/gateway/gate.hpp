// The part of the proxy both transports share: the routes (allow-listed methods found
// in the compiled protos, each with its backend), and the gate every call passes
// before it is forwarded — authentication, rate limit, project resolution,
// authorization, identity fields — plus the work done on answers (ListProjects filter,
// CreateProject owner, learnt object ids) and the mapping of backend failures.
#pragma once

#include <google/protobuf/descriptor.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "services/gateway/authn.hpp"
#include "services/gateway/policy.hpp"
#include "services/gateway/rate_limit.hpp"

namespace labelloop::gateway {

struct Backend {
  std::string name;     // "labeling"
  std::string address;  // "127.0.0.1:50052"
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<grpc::GenericStub> stub;
};

struct Route {
  MethodPolicy policy;
  const google::protobuf::MethodDescriptor* method = nullptr;
  Backend* backend = nullptr;
  bool client_streaming = false;
  bool server_streaming = false;
  std::string http_path;  // "/v1/LabelingService/GetProject"
};

struct GateOptions {
  std::map<std::string, std::string> backend_addresses;  // name → host:port
  int max_message_bytes = 64 << 20;
  int64_t deadline_ms = 5000;            // every unary internal call
  int64_t stream_deadline_ms = 3600000;  // streaming internal calls
  int64_t user_rate_limit = 600;         // calls per window per user (0 = off)
  int64_t api_key_rate_limit = 3000;     // calls per window per API key (0 = off)
  int64_t rate_window_seconds = 60;
};

// What the gate learnt about an admitted call.
struct Admission {
  Principal principal;
  int64_t project_id = 0;  // 0 when the method has no project
  std::string request_id;
};

class Gate {
 public:
  Gate(GateOptions options, Authenticator& authn, Store& store, RateLimiter& limiter);

  const Route* Find(const std::string& grpc_method) const;
  const Route* FindHttp(const std::string& path) const;
  const std::vector<std::unique_ptr<Route>>& routes() const { return routes_; }
  const std::vector<std::string>& skipped() const { return skipped_; }
  const std::map<std::string, std::unique_ptr<Backend>>& backends() const { return backends_; }
  const GateOptions& options() const { return options_; }

  // Authenticates the caller and counts the call against their rate limit. On
  // RESOURCE_EXHAUSTED *retry_after is set (seconds).
  grpc::Status Authenticate(const Credentials& credentials, Principal* principal,
                            int64_t* retry_after);

  // The whole gate for the first (or only) request message of a call. May rewrite
  // *request (identity fields).
  grpc::Status Admit(const Route& route, const Credentials& credentials, std::string* request,
                     Admission* admission, int64_t* retry_after);
  // Admit without any I/O: from the caches alone, and only when the rate limiter does not
  // wait on its store.
  // nullopt when that is not enough — then nothing was counted or changed, call Admit.
  std::optional<grpc::Status> AdmitCached(const Route& route, const Credentials& credentials,
                                          std::string* request, Admission* admission,
                                          int64_t* retry_after);
  // A later message of a client stream must not switch to another project.
  grpc::Status CheckNext(const Route& route, const Admission& admission,
                         const std::string& request) const;
  // Work on a successful answer; may rewrite *response.
  grpc::Status AfterResponse(const Route& route, const Admission& admission, std::string* response);

  // Whether AfterResponse may wait on the database for this call.
  bool AfterResponseMayBlock(const Route& route, const Admission& admission) const;

  // A backend failure as the caller should see it (names the service when it is down).
  grpc::Status MapBackendStatus(const Backend& backend, const grpc::Status& status) const;

  // Sets deadline, request id and caller metadata on an internal call.
  void PrepareContext(grpc::ClientContext* context, const Route& route, const Admission& admission,
                      std::chrono::system_clock::time_point caller_deadline) const;

  // Blocking unary call of raw bytes.
  grpc::Status CallUnary(Backend& backend, const std::string& method, const std::string& request,
                         std::string* response, const Admission* admission) const;

  Authenticator& authn() { return authn_; }

 private:
  // cached_only: nullopt instead of any I/O (database, Redis, backend). *counted: the
  // call was counted against the caller's rate limit.
  std::optional<grpc::Status> AuthenticateImpl(const Credentials& credentials, Principal* principal,
                                               int64_t* retry_after, bool cached_only,
                                               bool* counted = nullptr);
  std::optional<grpc::Status> AdmitImpl(const Route& route, const Credentials& credentials,
                                        std::string* request, Admission* admission,
                                        int64_t* retry_after, bool cached_only,
                                        bool* counted = nullptr);
  std::optional<grpc::Status> ResolveProject(const Route& route,
                                             const google::protobuf::Message& request,
                                             const Admission& admission, int64_t* project_id,
                                             bool cached_only);
  void Learn(const std::string& kind, int64_t id, int64_t project_id);

  GateOptions options_;
  Authenticator& authn_;
  Store& store_;
  RateLimiter& limiter_;
  std::map<std::string, std::unique_ptr<Backend>> backends_;
  std::vector<std::unique_ptr<Route>> routes_;
  std::unordered_map<std::string, const Route*> by_method_;
  std::unordered_map<std::string, const Route*> by_http_;
  std::vector<std::string> skipped_;
  std::mutex mu_;
  std::unordered_map<std::string, int64_t> object_project_;  // "item_id:5" → project
};

}  // namespace labelloop::gateway
