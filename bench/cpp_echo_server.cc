// cpp_echo_server.cc — C++ gRPC echo peer for bench/run.sh.
//
//   cpp_echo_server sync|callback [PORT [HOST]]   (defaults: 0 = any free port, 127.0.0.1)
//
// Serves /grpchelper.examples.Echo/Unary (bench/echo.proto) and answers every
// request with the same EchoMessage. "sync" registers the synchronous
// (thread-pool) service, "callback" the callback (reactor) service. Prints
// "listening on port N" once serving; exits on SIGINT/SIGTERM.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "echo.grpc.pb.h"

using grpchelper::examples::Echo;
using grpchelper::examples::EchoMessage;

namespace {

class SyncEcho final : public Echo::Service {
  grpc::Status Unary(grpc::ServerContext*, const EchoMessage* request,
                     EchoMessage* reply) override {
    *reply = *request;
    return grpc::Status::OK;
  }
};

class CallbackEcho final : public Echo::CallbackService {
  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* context,
                                  const EchoMessage* request,
                                  EchoMessage* reply) override {
    *reply = *request;
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

int usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s sync|callback [PORT [HOST]]\n", argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage(argv[0]);
  const std::string mode = argv[1];
  if (mode != "sync" && mode != "callback") return usage(argv[0]);
  long port = 0;
  if (argc > 2) {
    char* end = nullptr;
    port = std::strtol(argv[2], &end, 10);
    if (end == argv[2] || *end != '\0' || port < 0 || port > 65535) return usage(argv[0]);
  }
  const std::string host = argc > 3 ? argv[3] : "127.0.0.1";

  // Take SIGINT/SIGTERM with sigwait() only: block them before gRPC starts threads.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  SyncEcho sync_service;
  CallbackEcho callback_service;
  grpc::ServerBuilder builder;
  int bound = 0;
  builder.AddListeningPort(host + ":" + std::to_string(port),
                           grpc::InsecureServerCredentials(), &bound);
  if (mode == "sync") {
    builder.RegisterService(&sync_service);
  } else {
    builder.RegisterService(&callback_service);
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || bound == 0) {
    std::fprintf(stderr, "cpp_echo_server: could not start on %s:%ld\n", host.c_str(), port);
    return 1;
  }
  std::printf("listening on port %d\n", bound);
  std::fflush(stdout);

  int sig = 0;
  sigwait(&stop, &sig);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}
