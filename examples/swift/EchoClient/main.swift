// A Swift echo client: runs the four call patterns against an echo server and prints them.
//   echo-client HOST:PORT
import GRPCHelperCore
#if canImport(Glibc)
import Glibc
#endif

let target = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "localhost:50051"
let service = "/grpchelper.examples.Echo"
func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

do {
    let channel = try GRPCChannel(target: target)
    defer { channel.close() }

    // Unary, with metadata both ways.
    var md = Metadata()
    try md.add("x-echo", "from-swift")
    let call = channel.makeCall("\(service)/Unary", options: CallOptions(timeout: 10, metadata: md))
    call.start()
    try call.send(Array("hello".utf8))
    call.closeSend()
    let reply = try call.receive()
    let status = call.waitStatus()
    guard status.isOK, let r = reply else { throw RPCError(status) }
    print("unary: sent 'hello' got '\(text(r))' (initial metadata x-echo=\(call.waitInitialMetadata().first("x-echo") ?? "-"))")

    // Server streaming.
    let ss = channel.makeCall("\(service)/ServerStream", options: CallOptions(timeout: 10))
    ss.start()
    try ss.send(Array("3:swift".utf8))
    ss.closeSend()
    var got: [String] = []
    while let m = try ss.receive() { got.append(text(m)) }
    guard ss.waitStatus().isOK else { throw RPCError(ss.waitStatus()) }
    print("server streaming: sent '3:swift' got \(got)")

    // Client streaming.
    let cs = channel.makeCall("\(service)/ClientStream", options: CallOptions(timeout: 10))
    cs.start()
    for s in ["a", "b", "c"] { try cs.send(Array(s.utf8)) }
    cs.closeSend()
    let joined = try cs.receive()
    guard cs.waitStatus().isOK, let j = joined else { throw RPCError(cs.waitStatus()) }
    print("client streaming: sent [a, b, c] got '\(text(j))'")

    // Bidirectional ping-pong.
    let bidi = channel.makeCall("\(service)/Bidi", options: CallOptions(timeout: 10))
    bidi.start()
    var pongs: [String] = []
    for s in ["ping 1", "ping 2", "ping 3"] {
        try bidi.send(Array(s.utf8))
        guard let m = try bidi.receive() else { throw RPCError(bidi.waitStatus()) }
        pongs.append(text(m))
    }
    bidi.closeSend()
    guard try bidi.receive() == nil, bidi.waitStatus().isOK else { throw RPCError(bidi.waitStatus()) }
    print("bidi streaming: ping-pong got \(pongs)")
} catch {
    print("echo-client failed: \(error)")
    exit(1)
}
