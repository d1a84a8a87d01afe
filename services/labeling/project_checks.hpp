// Request checks of the labeling adapter: a proto request turned into the storage
// input, or an INVALID_ARGUMENT error naming the field (rules from domain/).
#pragma once

#include <string>

#include "labelloop/v1/labeling.pb.h"
#include "services/labeling/domain/outcome.hpp"
#include "services/labeling/storage/project_store.hpp"
#include "services/labeling/storage/query_store.hpp"

namespace labelloop::labeling {

Outcome<storage::NewProject> CheckNewProject(const v1::CreateProjectRequest& req);
Outcome<storage::ProjectChange> CheckProjectChange(const v1::UpdateProjectRequest& req);
Outcome<storage::ItemFilter> CheckItemFilter(const v1::ListItemsRequest& req);
// A canonical text of the filter, for the cursor fingerprint.
std::string FilterKey(const storage::ItemFilter& filter);
// The validators object: a JSON object, and what ingestion accepts.
std::string CheckValidators(const std::string& json);

}  // namespace labelloop::labeling
