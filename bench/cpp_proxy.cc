// cpp_proxy.cc — C++ gRPC's best generic proxy, the peer of our proxy in bench/proxy_bench.py.
//
//   cpp_proxy --backend PORT [--port PORT]      (port 0 = any free port; host 127.0.0.1)
//
// Forwards every call, whatever its method, to the backend at 127.0.0.1:PORT with the
// callback (reactor) API on both sides: a CallbackGenericService reactor per incoming call
// and a GenericStub bidi reactor per outgoing one, on one channel. Messages are forwarded as
// they come (ByteBuffers, never parsed), one in flight each way (a message is read from one
// side only when the other side took the previous one: end-to-end flow control); the
// caller's metadata and deadline go to the backend, the backend's status and message come
// back, and a cancelled caller cancels the backend call. Response headers and trailing
// metadata are not copied (grpc-helper's services have none). No api_version check and no
// registration: the minimum a proxy built on C++ gRPC does, as a bound for ours.
//
// Prints "READY <port>" once serving; exits 0 when "shutdown" (or EOF) comes on stdin.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

namespace {

class Forward final : public grpc::ServerGenericBidiReactor {
 public:
  Forward(grpc::GenericCallbackServerContext* ctx, grpc::GenericStub* stub) : out_(this) {
    for (const auto& kv : ctx->client_metadata()) {
      std::string key(kv.first.data(), kv.first.size());
      if (key == "user-agent" || key.empty() || key[0] == ':' || key.compare(0, 5, "grpc-") == 0)
        continue;
      out_ctx_.AddMetadata(key, std::string(kv.second.data(), kv.second.size()));
    }
    out_ctx_.set_deadline(ctx->deadline());
    stub->PrepareBidiStreamingCall(&out_ctx_, ctx->method(), grpc::StubOptions(), &out_);
    // The backend call may end (OnDone) only once no more operations will be started on
    // it: when its reads ended and no more writes will come (see Closed).
    out_.AddHold();
    out_.StartCall();
    out_.StartRead(&response_);
    StartRead(&request_);
  }

  // caller -> backend: one message in flight (the next read once the backend took it)
  void OnReadDone(bool ok) override {
    if (ok) {
      out_.StartWrite(&request_);
    } else {
      out_.StartWritesDone();
      Closed(&writes_closed_);
    }
  }
  void BackendWriteDone(bool ok) {
    if (ok) {
      StartRead(&request_);
    } else {
      Closed(&writes_closed_);   // the backend call ended: stop reading the caller
    }
  }

  // backend -> caller: one message in flight
  void BackendReadDone(bool ok) {
    if (ok) {
      StartWrite(&response_);
    } else {
      Closed(&reads_closed_);
    }
  }
  void OnWriteDone(bool ok) override {
    if (!ok) out_ctx_.TryCancel();   // the caller is gone: the read below ends at once
    out_.StartRead(&response_);
  }

  void BackendDone(const grpc::Status& status) { Finish(status); }

  void OnCancel() override { out_ctx_.TryCancel(); }
  void OnDone() override {
    // Finish came from the backend call's OnDone: both sides are done
    delete this;
  }

 private:
  class Out final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
   public:
    explicit Out(Forward* f) : f_(f) {}
    void OnReadDone(bool ok) override { f_->BackendReadDone(ok); }
    void OnWriteDone(bool ok) override { f_->BackendWriteDone(ok); }
    void OnWritesDoneDone(bool) override {}
    void OnDone(const grpc::Status& status) override { f_->BackendDone(status); }
    Forward* f_;
  };

  void Closed(bool* which) {
    bool release;
    {
      std::lock_guard<std::mutex> lock(mu_);
      *which = true;
      release = reads_closed_ && writes_closed_;
    }
    if (release) out_.RemoveHold();
  }

  grpc::ClientContext out_ctx_;
  Out out_;
  grpc::ByteBuffer request_, response_;
  std::mutex mu_;
  bool reads_closed_ = false, writes_closed_ = false;
};

class Proxy final : public grpc::CallbackGenericService {
 public:
  explicit Proxy(std::shared_ptr<grpc::Channel> channel) : stub_(channel) {}
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    return new Forward(ctx, &stub_);
  }

 private:
  grpc::GenericStub stub_;
};

int usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s --backend PORT [--port PORT]\n", argv0);
  return 2;
}

bool parse_port(const char* s, long* out) {
  char* end = nullptr;
  long v = std::strtol(s, &end, 10);
  if (end == s || *end != '\0' || v < 0 || v > 65535) return false;
  *out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  long backend = -1, port = 0;
  for (int i = 1; i < argc; i++) {
    if (i + 1 < argc && std::strcmp(argv[i], "--backend") == 0) {
      if (!parse_port(argv[++i], &backend)) return usage(argv[0]);
    } else if (i + 1 < argc && std::strcmp(argv[i], "--port") == 0) {
      if (!parse_port(argv[++i], &port)) return usage(argv[0]);
    } else {
      return usage(argv[0]);
    }
  }
  if (backend <= 0) return usage(argv[0]);

  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto channel = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(backend),
                                           grpc::InsecureChannelCredentials(), args);
  Proxy proxy(channel);
  grpc::ServerBuilder builder;
  int bound = 0;
  builder.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials(),
                           &bound);
  builder.RegisterCallbackGenericService(&proxy);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || bound == 0) {
    std::fprintf(stderr, "cpp_proxy: could not listen on 127.0.0.1:%ld\n", port);
    return 1;
  }
  std::printf("READY %d\n", bound);
  std::fflush(stdout);
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line == "shutdown") break;
  }
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server->Wait();
  return 0;
}
