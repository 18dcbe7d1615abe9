// Short names for the grpc.testing messages, shared by interop-server and interop-client.
public typealias Empty = Grpc_Testing_Empty
public typealias Payload = Grpc_Testing_Payload
public typealias SimpleRequest = Grpc_Testing_SimpleRequest
public typealias SimpleResponse = Grpc_Testing_SimpleResponse
public typealias StreamingInputCallRequest = Grpc_Testing_StreamingInputCallRequest
public typealias StreamingInputCallResponse = Grpc_Testing_StreamingInputCallResponse
public typealias StreamingOutputCallRequest = Grpc_Testing_StreamingOutputCallRequest
public typealias StreamingOutputCallResponse = Grpc_Testing_StreamingOutputCallResponse
public typealias ResponseParameters = Grpc_Testing_ResponseParameters

/// The TestService's path prefix.
public let testServicePath = "/grpc.testing.TestService"
