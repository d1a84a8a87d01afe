// labelctl's commands. Each returns the process exit code: 0 ok, 1 the call failed
// (message on stderr), 2 bad usage.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "services/gateway/labelctl/client.hpp"

namespace labelloop::labelctl {

struct Out {
  Client* client;
  bool json = false;
};

int CmdLogin(Out& o, const std::string& username, std::string password);
int CmdLogout(Out& o);
int CmdWhoAmI(Out& o);
int CmdUserCreate(Out& o, const std::string& name, const std::string& role, std::string password);
int CmdUserList(Out& o);
int CmdUserDisable(Out& o, int64_t id, bool disabled);
int CmdApiKeyCreate(Out& o, const std::string& name, int64_t user_id);
int CmdApiKeyList(Out& o, int64_t user_id);
int CmdApiKeyRevoke(Out& o, int64_t id);
int CmdMemberAdd(Out& o, int64_t project, const std::string& user, const std::string& role);
int CmdMemberRemove(Out& o, int64_t project, int64_t user_id);
int CmdMemberList(Out& o, int64_t project);

struct ProjectSpec {
  std::string name;
  std::string data_kind = "text";
  std::vector<std::string> classes;
  bool multi = false;
  std::string instructions;
  int judgements = 1;
  std::string settings_json;
};
int CmdProjectCreate(Out& o, const ProjectSpec& spec);
int CmdProjectList(Out& o);
int CmdProjectShow(Out& o, int64_t id);
int CmdStats(Out& o, int64_t project);

struct UploadSpec {
  int64_t project = 0;
  std::string file;
  std::string format;  // csv | jsonl | zip; empty: from the extension
  std::string external_id_column = "id";
  std::string text_column;
  std::vector<std::string> feature_columns;
  std::string label_column;
  std::string timestamp_column;
  bool commit_good_rows = false;
  size_t chunk_bytes = 1 << 20;
};
int CmdUpload(Out& o, const UploadSpec& spec);

int CmdTrainStart(Out& o, int64_t project, int epochs, const std::string& model, bool follow);
int CmdTrainWatch(Out& o, int64_t job);
int CmdTrainList(Out& o, int64_t project);
int CmdTrainCancel(Out& o, int64_t job);
int CmdModelsList(Out& o, int64_t project);
int CmdModelShow(Out& o, int64_t model);
int CmdRankInfo(Out& o, int64_t project);
int CmdRankStrategy(Out& o, int64_t project, const std::string& strategy);
int CmdDownloadRequest(Out& o, int64_t project, int64_t model, bool wait, const std::string& out);
int CmdDownloadList(Out& o, int64_t project);
int CmdDownloadStatus(Out& o, int64_t id);
int CmdDownloadFetch(Out& o, int64_t id, const std::string& out);
int CmdEvents(Out& o, int64_t project);
int CmdLabel(Out& o, int64_t project);

}  // namespace labelloop::labelctl
