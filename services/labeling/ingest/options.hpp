// Limits and feature-extraction parameters of ingestion, read from the process settings
// (see DeclareIngestSettings) or filled directly by tests and benchmarks.
#pragma once

#include <cstdint>
#include <string>

namespace labelloop::labeling::ingest {

struct IngestOptions {
  int64_t max_upload_bytes = int64_t{4} << 30;            // bytes streamed by one upload
  int64_t max_row_bytes = int64_t{16} << 20;              // one CSV record / JSON line
  int64_t zip_max_uncompressed_bytes = int64_t{4} << 30;  // sum of the entries' sizes
  double zip_max_ratio = 200.0;                           // uncompressed / compressed per entry
  int64_t zip_max_entries = 1000000;
  int64_t max_image_bytes = int64_t{32} << 20;   // one encoded image
  int64_t max_image_pixels = 50000000;           // width * height before decoding
  int text_feature_dim = 1024;                   // hashed text features
  int image_grid = 16;                           // images resized to grid x grid
  bool image_rgb = false;                        // grid in RGB (3 values per cell) or grey
  int histogram_bins = 8;                        // colour histogram bins per channel
  int max_rejects_listed = 1000;                 // rejected rows returned in a response
  int64_t copy_buffer_bytes = int64_t{1} << 20;  // COPY data sent per round
  std::string spool_dir = "/tmp";  // zip uploads, direct COPY data (ingestor.hpp) spooled here
  int max_concurrent_uploads = 2;  // each holds a pooled connection for its whole duration
};

}  // namespace labelloop::labeling::ingest
