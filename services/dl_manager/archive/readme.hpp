// The documentation shipped inside every archive: README.md (the files and their
// columns) and classifier/README.md (how to load and apply the model with numpy).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace labelloop::dl_manager {

// The columns of each JSON entry, as documented in the README and the manifest.
nlohmann::json EntrySchema();

// project: {"project_id","name","classes",...}; model: {"model_id","version",...}.
std::string ArchiveReadme(const nlohmann::json& project, const nlohmann::json& model,
                          const std::string& machine_labels_source);
std::string ClassifierReadme(const nlohmann::json& model);

}  // namespace labelloop::dl_manager
