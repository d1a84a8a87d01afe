#include "services/dl_manager/archive/readme.hpp"

namespace labelloop::dl_manager {

nlohmann::json EntrySchema() {
  using nlohmann::json;
  return json{{"human_labels.json",
               json{{"description", "one record per labeled item (its consensus label)"},
                    {"columns", json::array({"item_id", "external_id", "sample_ts", "labels",
                                             "annotators", "labeled_at"})}}},
              {"machine_labels.json",
               json{{"description", "one record per unlabeled item, predicted by the model"},
                    {"columns", json::array({"item_id", "external_id", "sample_ts", "predicted",
                                             "confidence", "probabilities"})}}},
              {"timestamps.json",
               json{{"description",
                     "one record per (item, label); an item without labels has one record with "
                     "null label fields"},
                    {"columns", json::array({"item_id", "external_id", "sample_ts", "labeled",
                                             "annotator", "label_classes", "submitted_at",
                                             "updated_at", "seconds_spent"})}}}};
}

std::string ArchiveReadme(const nlohmann::json& project, const nlohmann::json& model,
                          const std::string& machine_labels_source) {
  std::string r;
  r += "# labelloop export: project " + project.value("name", std::string()) + " (id " +
       std::to_string(project.value("project_id", 0L)) + "), model " +
       std::to_string(model.value("model_id", 0L)) + " (version " +
       std::to_string(model.value("version", 0)) + ")\n\n";
  r += R"(Every `.json` file is a JSON array of records, one object per row, so it loads
with plain pandas:

```python
import pandas as pd
human = pd.read_json("human_labels.json")
machine = pd.read_json("machine_labels.json")
stamps = pd.read_json("timestamps.json")
```

pandas' defaults parse columns whose names end in `_at` as datetimes and may turn an
`external_id` that looks numeric into a number: pass `dtype={"external_id": str}` to
keep it as text. Times are ISO 8601 in UTC. `manifest.json` lists every entry with its
size, record count and SHA-256, the project, the model and these schemas.

## human_labels.json — one record per labeled item

| column | meaning |
| --- | --- |
| item_id | labelloop item id |
| external_id | the id the item was ingested with |
| sample_ts | the item's sample timestamp (ISO 8601 text, null when unknown) |
| labels | the consensus label: a list of class names |
| annotators | who labeled it |
| labeled_at | when its latest label was submitted or changed |

## machine_labels.json — one record per unlabeled item

| column | meaning |
| --- | --- |
| item_id, external_id, sample_ts | as above |
| predicted | predicted class names (single-label: the most probable; multi-label: every class with p >= 0.5) |
| confidence | the probability of the most probable class |
| probabilities | an object mapping every class name to its probability (`pd.json_normalize` or `df.probabilities.apply(pd.Series)` spreads it into columns) |

)";
  r += "In this archive the machine labels come from " +
       std::string(machine_labels_source == "stored_predictions"
                       ? "the predictions the training service stored for this model."
                       : "applying classifier/model.json to each item's features.") +
       "\n\n";
  r += R"(## timestamps.json — one record per (item, label)

| column | meaning |
| --- | --- |
| item_id, external_id, sample_ts | as above (every item of the project appears) |
| labeled | whether the item has its final (consensus) label |
| annotator, label_classes | one annotator's label (null for an item nobody labeled) |
| submitted_at, updated_at | when that label was first submitted and last changed |
| seconds_spent | time the annotator spent on it |

## classifier/

`classifier/model.json` is the trained model in its portable form and
`classifier/README.md` shows how to apply it with numpy.
)";
  return r;
}

std::string ClassifierReadme(const nlohmann::json& model) {
  std::string r = "# The classifier (model " + std::to_string(model.value("model_id", 0L)) + ", " +
                  model.value("model_type", std::string("?")) + ")\n\n";
  r += R"(`model.json` holds everything needed to apply the model without labelloop:

- `classes`: the class names, in the order of the model's outputs
- `feature_dim`: the length of a feature vector
- `standardization`: `mean` and `std` per feature; inputs are standardised first
  (a `std` of 0 counts as 1)
- `layers`: applied in order, `h = activation(W @ h + b)`, with `weights` one row per
  output unit; the last layer is `softmax` (single-label) or `sigmoid` (multi-label)
- `multi_label`, `model_type`, `spec` (training settings), `metrics` (evaluation)

```python
import json
import numpy as np

m = json.load(open("classifier/model.json"))
mean = np.array(m["standardization"]["mean"])
std = np.array(m["standardization"]["std"])
std[std == 0] = 1.0

def predict_proba(X):                      # X: (n, feature_dim) array
    h = (np.asarray(X, dtype=np.float64) - mean) / std
    for layer in m["layers"]:
        h = h @ np.array(layer["weights"]).T + np.array(layer["bias"])
        act = layer["activation"]
        if act == "relu":
            h = np.maximum(h, 0)
        elif act == "sigmoid":
            h = 1 / (1 + np.exp(-h))
        elif act == "softmax":
            h = np.exp(h - h.max(axis=1, keepdims=True))
            h /= h.sum(axis=1, keepdims=True)
    return h                               # (n, len(classes)) probabilities

# single-label: the class of each row
# [m["classes"][i] for i in predict_proba(X).argmax(axis=1)]
```
)";
  return r;
}

}  // namespace labelloop::dl_manager
