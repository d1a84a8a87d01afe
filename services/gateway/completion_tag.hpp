// What the gateway's completion queue hands back. The gRPC proxy's calls and the HTTP
// API's upstream calls share one completion queue and one polling thread (proxy.hpp):
// with a second thread polling gRPC's shared epoll set, the two took the poller role
// from each other (5.1 thread switches per proxied read instead of 1.4–2.0). Every tag
// put on that queue is a CompletionTag, so the polling loop needs no knowledge of who
// started the operation.
#pragma once

namespace labelloop::gateway {

class CompletionTag {
 public:
  // The operation behind this tag completed (`ok`: whether it succeeded). May delete the
  // object the tag belongs to.
  virtual void Complete(bool ok) = 0;

 protected:
  ~CompletionTag() = default;
};

// The pointer to give gRPC as a tag: the polling loop casts the void* it gets back to
// CompletionTag*, which is only valid for a pointer converted from CompletionTag*.
inline void* AsTag(CompletionTag* tag) { return tag; }

}  // namespace labelloop::gateway
