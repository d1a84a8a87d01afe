#include "services/dl_manager/service.hpp"

#include "common/grpc_server/request_context.hpp"

namespace labelloop::dl_manager {

grpc::Status DlManagerServiceImpl::GetInfo(grpc::ServerContext* context,
                                       const v1::GetInfoRequest* /*request*/,
                                       v1::ServiceInfo* reply) {
  grpc_server::RequestScope scope(context);
  runtime_.FillInfo(reply);
  return grpc::Status::OK;
}

}  // namespace labelloop::dl_manager
