// labelctl: the command-line client of labelloop. It talks only to the gateway.
//
//   labelctl login -u alice
//   labelctl project create --name reviews --data-kind text --classes pos,neg
//   labelctl upload --project 1 --file reviews.csv --text-column text
//   labelctl train start --project 1 --follow
//   labelctl models list --project 1
//   labelctl download request --project 1 --wait --out reviews.zip
//   labelctl label --project 1
//
// Every command takes --output json for scripts.
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <sstream>

#include "services/gateway/labelctl/commands.hpp"

int main(int argc, char** argv) {
  using namespace labelloop::labelctl;
  CLI::App app{"labelctl: the labelloop command-line client (talks to the gateway)"};
  app.require_subcommand(1);
  const char* env_gateway = std::getenv("LABELLOOP_GATEWAY");
  const char* env_key = std::getenv("LABELLOOP_API_KEY");
  std::string gateway = env_gateway != nullptr ? env_gateway : "";
  std::string token_path = DefaultTokenPath();
  std::string api_key = env_key != nullptr ? env_key : "";
  std::string output = "table";
  app.add_option("--gateway", gateway,
                 "gateway gRPC address (env LABELLOOP_GATEWAY; default: the one logged in to, "
                 "else 127.0.0.1:50051)");
  app.add_option("--token-file", token_path, "where the login is kept");
  app.add_option("--api-key", api_key, "authenticate with an API key (env LABELLOOP_API_KEY)");
  app.add_option("-o,--output", output, "table or json")->check(CLI::IsMember({"table", "json"}));

  std::function<int(Out&)> action;
  auto on = [&action](CLI::App* cmd, std::function<int(Out&)> fn) {
    cmd->callback([&action, fn] { action = fn; });
  };

  // Authentication and users.
  std::string username, password, role, name;
  int64_t id = 0, user_id = 0, project = 0, model = 0;
  auto* login = app.add_subcommand("login", "log in and keep the token");
  login->add_option("-u,--username", username, "user name")->required();
  login->add_option("-p,--password", password, "password (prompted when omitted)");
  on(login, [&](Out& o) { return CmdLogin(o, username, password); });
  on(app.add_subcommand("logout", "forget the login"), [&](Out& o) { return CmdLogout(o); });
  on(app.add_subcommand("whoami", "who am I"), [&](Out& o) { return CmdWhoAmI(o); });

  auto* users = app.add_subcommand("users", "manage users (admin)");
  users->require_subcommand(1);
  auto* ucreate = users->add_subcommand("create", "create a user");
  ucreate->add_option("username", username)->required();
  ucreate->add_option("--role", role, "admin, manager or annotator")->required();
  ucreate->add_option("-p,--password", password, "password (prompted when omitted)");
  on(ucreate, [&](Out& o) { return CmdUserCreate(o, username, role, password); });
  on(users->add_subcommand("list", "list users"), [&](Out& o) { return CmdUserList(o); });
  auto* udisable = users->add_subcommand("disable", "disable a user");
  udisable->add_option("id", id)->required();
  on(udisable, [&](Out& o) { return CmdUserDisable(o, id, true); });
  auto* uenable = users->add_subcommand("enable", "enable a user");
  uenable->add_option("id", id)->required();
  on(uenable, [&](Out& o) { return CmdUserDisable(o, id, false); });

  auto* keys = app.add_subcommand("apikeys", "API keys for services");
  keys->require_subcommand(1);
  auto* kcreate = keys->add_subcommand("create", "create a key (shown once)");
  kcreate->add_option("name", name, "what the key is for")->required();
  kcreate->add_option("--user", user_id, "the user the key acts as (admin; default: me)");
  on(kcreate, [&](Out& o) { return CmdApiKeyCreate(o, name, user_id); });
  auto* klist = keys->add_subcommand("list", "list keys");
  klist->add_option("--user", user_id, "whose keys (admin; default: mine)");
  on(klist, [&](Out& o) { return CmdApiKeyList(o, user_id); });
  auto* krevoke = keys->add_subcommand("revoke", "revoke a key");
  krevoke->add_option("id", id)->required();
  on(krevoke, [&](Out& o) { return CmdApiKeyRevoke(o, id); });

  auto* members = app.add_subcommand("members", "project members");
  members->require_subcommand(1);
  std::string member;
  auto* madd = members->add_subcommand("add", "add or change a member");
  madd->add_option("--project", project)->required();
  madd->add_option("--user", member, "user name or id")->required();
  madd->add_option("--role", role, "manager or annotator")->default_val("annotator");
  on(madd, [&](Out& o) { return CmdMemberAdd(o, project, member, role); });
  auto* mremove = members->add_subcommand("remove", "remove a member");
  mremove->add_option("--project", project)->required();
  mremove->add_option("--user-id", user_id)->required();
  on(mremove, [&](Out& o) { return CmdMemberRemove(o, project, user_id); });
  auto* mlist = members->add_subcommand("list", "list members");
  mlist->add_option("--project", project)->required();
  on(mlist, [&](Out& o) { return CmdMemberList(o, project); });

  // Projects and data.
  auto* projects = app.add_subcommand("project", "projects");
  projects->require_subcommand(1);
  ProjectSpec spec;
  std::string classes;
  auto* pcreate = projects->add_subcommand("create", "create a project (you become its owner)");
  pcreate->add_option("--name", spec.name)->required();
  pcreate->add_option("--data-kind", spec.data_kind, "text, tabular or image")->default_val("text");
  pcreate->add_option("--classes", classes, "comma-separated class names")->required();
  pcreate->add_flag("--multi", spec.multi, "several classes per item");
  pcreate->add_option("--instructions", spec.instructions);
  pcreate->add_option("--judgements", spec.judgements, "labels per item")->default_val(1);
  pcreate->add_option("--settings", spec.settings_json, "settings JSON object");
  on(pcreate, [&](Out& o) {
    std::stringstream ss(classes);
    std::string c;
    while (std::getline(ss, c, ',')) {
      if (!c.empty()) spec.classes.push_back(c);
    }
    return CmdProjectCreate(o, spec);
  });
  on(projects->add_subcommand("list", "projects I can see"),
     [&](Out& o) { return CmdProjectList(o); });
  auto* pshow = projects->add_subcommand("show", "one project");
  pshow->add_option("id", id)->required();
  on(pshow, [&](Out& o) { return CmdProjectShow(o, id); });

  UploadSpec up;
  std::string features;
  auto* upload = app.add_subcommand("upload", "upload a CSV, JSON Lines or zip file");
  upload->add_option("--project", up.project)->required();
  upload->add_option("--file", up.file)->required()->check(CLI::ExistingFile);
  upload->add_option("--format", up.format, "csv, jsonl or zip (default: the extension)");
  upload->add_option("--id-column", up.external_id_column, "external id column")->default_val("id");
  upload->add_option("--text-column", up.text_column);
  upload->add_option("--feature-columns", features, "comma-separated numeric columns");
  upload->add_option("--label-column", up.label_column);
  upload->add_option("--timestamp-column", up.timestamp_column);
  upload->add_flag("--commit-good-rows", up.commit_good_rows,
                   "keep the good rows when some are rejected");
  on(upload, [&](Out& o) {
    std::stringstream ss(features);
    std::string c;
    while (std::getline(ss, c, ',')) {
      if (!c.empty()) up.feature_columns.push_back(c);
    }
    return CmdUpload(o, up);
  });
  auto* stats = app.add_subcommand("stats", "labeling progress of a project");
  stats->add_option("--project", project)->required();
  on(stats, [&](Out& o) { return CmdStats(o, project); });

  // Training and models.
  auto* train = app.add_subcommand("train", "training jobs");
  train->require_subcommand(1);
  int epochs = 0;
  bool follow = false;
  std::string model_type;
  auto* tstart = train->add_subcommand("start", "start training");
  tstart->add_option("--project", project)->required();
  tstart->add_option("--epochs", epochs);
  tstart->add_option("--model", model_type, "softmax or mlp");
  tstart->add_flag("-f,--follow", follow, "follow the job live");
  on(tstart, [&](Out& o) { return CmdTrainStart(o, project, epochs, model_type, follow); });
  auto* twatch = train->add_subcommand("watch", "follow a job live");
  twatch->add_option("job", id)->required();
  on(twatch, [&](Out& o) { return CmdTrainWatch(o, id); });
  auto* tlist = train->add_subcommand("list", "jobs of a project");
  tlist->add_option("--project", project)->required();
  on(tlist, [&](Out& o) { return CmdTrainList(o, project); });
  auto* tcancel = train->add_subcommand("cancel", "cancel a job");
  tcancel->add_option("job", id)->required();
  on(tcancel, [&](Out& o) { return CmdTrainCancel(o, id); });

  auto* models = app.add_subcommand("models", "trained models");
  models->require_subcommand(1);
  auto* mlist2 = models->add_subcommand("list", "models of a project");
  mlist2->add_option("--project", project)->required();
  on(mlist2, [&](Out& o) { return CmdModelsList(o, project); });
  auto* mshow = models->add_subcommand("show", "metrics of a model");
  mshow->add_option("id", id)->required();
  on(mshow, [&](Out& o) { return CmdModelShow(o, id); });

  auto* rank = app.add_subcommand("rank", "ranking of unlabeled items");
  rank->require_subcommand(1);
  auto* rinfo = rank->add_subcommand("info", "where the order comes from");
  rinfo->add_option("--project", project)->required();
  on(rinfo, [&](Out& o) { return CmdRankInfo(o, project); });
  std::string strategy;
  auto* rstrategy = rank->add_subcommand("strategy", "set the query strategy");
  rstrategy->add_option("--project", project)->required();
  rstrategy
      ->add_option("strategy", strategy,
                   "least_confidence, margin, entropy, random or batch_diverse")
      ->required();
  on(rstrategy, [&](Out& o) { return CmdRankStrategy(o, project, strategy); });

  // Downloads.
  auto* dl = app.add_subcommand("download", "archives of a project");
  dl->require_subcommand(1);
  bool wait = false;
  std::string out_path;
  auto* dreq = dl->add_subcommand("request", "request an archive");
  dreq->add_option("--project", project)->required();
  dreq->add_option("--model", model, "model id (default: the latest)");
  dreq->add_flag("-w,--wait", wait, "wait until it is built, then fetch it");
  dreq->add_option("--out", out_path, "file to write (with --wait)");
  on(dreq, [&](Out& o) { return CmdDownloadRequest(o, project, model, wait, out_path); });
  auto* dlist = dl->add_subcommand("list", "archives of a project");
  dlist->add_option("--project", project)->required();
  on(dlist, [&](Out& o) { return CmdDownloadList(o, project); });
  auto* dstatus = dl->add_subcommand("status", "state of an archive");
  dstatus->add_option("id", id)->required();
  on(dstatus, [&](Out& o) { return CmdDownloadStatus(o, id); });
  auto* dfetch = dl->add_subcommand("fetch", "fetch an archive");
  dfetch->add_option("id", id)->required();
  dfetch->add_option("--out", out_path, "file to write (default download-<id>.zip)");
  on(dfetch, [&](Out& o) { return CmdDownloadFetch(o, id, out_path); });

  auto* events = app.add_subcommand("events", "live events of a project");
  events->add_option("--project", project)->required();
  on(events, [&](Out& o) { return CmdEvents(o, project); });
  auto* label = app.add_subcommand("label", "label items in the terminal (text, tabular)");
  label->add_option("--project", project)->required();
  on(label, [&](Out& o) { return CmdLabel(o, project); });

  CLI11_PARSE(app, argc, argv);
  if (!action) return 2;
  Client client(gateway, token_path, api_key);
  Out o{&client, output == "json"};
  return action(o);
}
