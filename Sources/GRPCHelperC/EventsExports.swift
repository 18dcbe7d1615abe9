// The events C ABI (grpchelper/events.h): `@c @implementation` functions, thin translations
// onto GRPCHelper's RpcEvent and EventsListener.
import CGRPCHelper
import Foundation
import GRPCHelper
import GRPCHelperCore

@c @implementation
public func gh_event_encode(_ name: UnsafePointer<CChar>?, _ names: UnsafePointer<UnsafePointer<CChar>?>?,
                            _ values: UnsafePointer<UnsafePointer<CChar>?>?, _ count: Int,
                            _ data: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?,
                            _ len: UnsafeMutablePointer<Int>?) -> Int32 {
    boundary {
        var event = RpcEvent()
        event.name = try string(name, "name")
        if count > 0 {
            guard let names = names, let values = values else {
                throw ExportError(GH_ERR_INVALID_ARGUMENT, "property arrays are NULL with a non-zero count")
            }
            for i in 0..<count {
                var p = RpcEventProperty()
                p.name = try string(names[i], "property name \(i)")
                p.value = try string(values[i], "property value \(i)")
                event.properties.append(p)
            }
        }
        return try handOver(try event.serializedBytes(), data, len)
    }
}

/// An event lent to a callback: its strings as C strings, alive with the box.
final class EventBox {
    let encoded = OwnedBytes()
    let name: UnsafeMutablePointer<CChar>
    let properties: [(name: UnsafeMutablePointer<CChar>, value: UnsafeMutablePointer<CChar>)]

    init(_ event: RpcEvent) {
        name = strdup(event.name)
        properties = event.properties.map { (strdup($0.name), strdup($0.value)) }
        encoded.set((try? event.serializedBytes()) ?? [])
    }

    deinit {
        free(name)
        for p in properties {
            free(p.name)
            free(p.value)
        }
    }
}

@c @implementation
public func gh_event_name(_ e: OpaquePointer?) -> UnsafePointer<CChar>? {
    guard let box = try? borrow(e, EventBox.self, "event") else { return nil }
    return UnsafePointer(box.name)
}

@c @implementation
public func gh_event_property_count(_ e: OpaquePointer?) -> Int {
    (try? borrow(e, EventBox.self, "event"))?.properties.count ?? 0
}

@c @implementation
public func gh_event_property(_ e: OpaquePointer?, _ index: Int,
                              _ name: UnsafeMutablePointer<UnsafePointer<CChar>?>?,
                              _ value: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Int32 {
    boundary {
        let box = try borrow(e, EventBox.self, "event")
        guard index >= 0 && index < box.properties.count else {
            throw ExportError(GH_ERR_INVALID_ARGUMENT, "property index \(index) out of range (\(box.properties.count))")
        }
        name?.pointee = UnsafePointer(box.properties[index].name)
        value?.pointee = UnsafePointer(box.properties[index].value)
        return GH_OK
    }
}

@c @implementation
public func gh_event_property_value(_ e: OpaquePointer?, _ name: UnsafePointer<CChar>?) -> UnsafePointer<CChar>? {
    guard let box = try? borrow(e, EventBox.self, "event"), let name = name else { return nil }
    return box.properties.first(where: { strcmp($0.name, name) == 0 }).map { UnsafePointer($0.value) }
}

@c @implementation
public func gh_event_encoded(_ e: OpaquePointer?, _ data: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
                             _ len: UnsafeMutablePointer<Int>?) -> Int32 {
    boundary {
        let box = try borrow(e, EventBox.self, "event")
        data?.pointee = UnsafePointer(box.encoded.pointer)
        len?.pointee = box.encoded.count
        return GH_OK
    }
}

/// A C listener.
final class EventsListenerBox {
    let listener: EventsListener
    init(_ listener: EventsListener) { self.listener = listener }
}

@c @implementation
public func gh_events_listener_new(_ c: OpaquePointer?, _ names: UnsafePointer<UnsafePointer<CChar>?>?, _ count: Int,
                                   _ clientID: UInt32, _ onEvent: gh_event_fn?,
                                   _ userData: UnsafeMutableRawPointer?, _ freeUserData: gh_free_fn?,
                                   _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    let data = UserData(userData, freeUserData)
    return boundary {
        guard let out = out else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "out is NULL") }
        guard let onEvent = onEvent else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "on_event is NULL") }
        let client = try borrow(c, RpcClientBox.self, "client").require()
        var list: [String] = []
        if count > 0 {
            guard let names = names else { throw ExportError(GH_ERR_INVALID_ARGUMENT, "names is NULL with a non-zero count") }
            for i in 0..<count { list.append(try string(names[i], "name \(i)")) }
        }
        // The closure keeps the user data: it is freed when the listener goes, after its
        // thread's last callback.
        let listener = EventsListener(client: client, names: list, clientID: clientID == 0 ? nil : clientID) { event in
            let box = EventBox(event)
            withExtendedLifetime(box) {
                onEvent(OpaquePointer(Unmanaged.passUnretained(box).toOpaque()), data.raw)
            }
        }
        out.pointee = makeHandle(EventsListenerBox(listener))
        return GH_OK
    }
}

@c @implementation
public func gh_events_listener_wait_ready(_ l: OpaquePointer?, _ timeout: Double) -> Int32 {
    boundary { () -> Int32 in
        let listener = try borrow(l, EventsListenerBox.self, "listener").listener
        return listener.waitReady(timeout: timeout < 0 ? Double.greatestFiniteMagnitude / 4 : timeout) ? 1 : 0
    }
}

@c @implementation
public func gh_events_listener_client_id(_ l: OpaquePointer?) -> UInt32 {
    (try? borrow(l, EventsListenerBox.self, "listener"))?.listener.clientID ?? 0
}

@c @implementation
public func gh_events_listener_is_running(_ l: OpaquePointer?) -> Int32 {
    ((try? borrow(l, EventsListenerBox.self, "listener"))?.listener.isRunning ?? false) ? 1 : 0
}

@c @implementation
public func gh_events_listener_interrupt(_ l: OpaquePointer?, _ wait: Double) -> Int32 {
    boundary { () -> Int32 in
        let listener = try borrow(l, EventsListenerBox.self, "listener").listener
        return try listener.interrupt(wait: max(0, wait)) ? 1 : 0
    }
}

@c @implementation
public func gh_events_listener_free(_ l: OpaquePointer?) {
    guard let l = l, let box = try? borrow(l, EventsListenerBox.self, "listener") else { return }
    box.listener.close(wait: 30)
    release(l, EventsListenerBox.self)
}
