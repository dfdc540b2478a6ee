import CCurl
import Foundation

/// Several SMTP connections driven from one thread through libcurl's multi interface:
/// one `poll` serves every connection, instead of a blocked thread per connection.
/// Each slot is one easy handle; connections are kept open between messages (in the
/// multi handle's connection cache) and closed with QUIT when this object goes away.
/// Used by one thread, except `wakeup`, which any thread may call.
/// This is the blast engine's real `BlastTransport`.
final class CurlSMTPMulti: BlastTransport, @unchecked Sendable {
    private let multi: UnsafeMutableRawPointer
    private let slots: [CurlSMTPHandle]
    private var active: Set<Int> = []
    private let wakeLock = NSLock()
    private var wantsWakeup = false

    init(settings: SMTPSettings, connections: Int) throws(SMTPError) {
        _ = Curl.globalInit
        guard let multi = curl_multi_init() else { throw .setup("curl_multi_init failed") }
        self.multi = multi
        var slots: [CurlSMTPHandle] = []
        do {
            for _ in 0..<max(1, connections) { slots.append(try CurlSMTPHandle(settings: settings)) }
        } catch {
            curl_multi_cleanup(multi)
            throw error
        }
        self.slots = slots
        _ = muster_curl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, slots.count)
        _ = muster_curl_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, slots.count)
    }

    deinit {
        for index in active { curl_multi_remove_handle(multi, slots[index].handle) }
        // Closes the cached connections, each with QUIT.
        curl_multi_cleanup(multi)
    }

    var slotCount: Int { slots.count }

    func start(slot: Int, message: RenderedMessage) -> DeliveryOutcome? {
        do {
            try start(slot: slot, from: message.envelopeFrom, to: [message.envelopeTo], message: message.bytes)
            return nil
        } catch {
            return DeliveryOutcome(error)
        }
    }

    func collect() -> [(slot: Int, outcome: DeliveryOutcome)] {
        perform().map { ended in
            switch ended.outcome {
            case .success(let receipt): return (ended.slot, .delivered(receipt))
            case .failure(let error): return (ended.slot, DeliveryOutcome(error))
            }
        }
    }

    /// Starts sending `message` on `slot` (which must be idle).
    func start(slot: Int, from envelopeFrom: String, to recipients: [String], message: [UInt8]) throws(SMTPError) {
        let connection = slots[slot]
        try connection.prepare(from: envelopeFrom, to: recipients, message: message)
        let code = curl_multi_add_handle(multi, connection.handle)
        guard code == CURLM_OK else {
            _ = try? connection.finish(CURLE_FAILED_INIT)
            throw .setup("curl_multi_add_handle: \(String(cString: curl_multi_strerror(code)))")
        }
        active.insert(slot)
    }

    /// The next transfer on `slot` opens a new connection.
    func useFreshConnection(slot: Int) { slots[slot].freshConnection = true }

    /// Moves every transfer forward and returns those that ended, with their outcome.
    func perform() -> [(slot: Int, outcome: Result<SMTPReceipt, SMTPError>)] {
        var running: Int32 = 0
        _ = curl_multi_perform(multi, &running)
        var done: [(slot: Int, outcome: Result<SMTPReceipt, SMTPError>)] = []
        var left: Int32 = 0
        while let message = curl_multi_info_read(multi, &left) {
            guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle,
                  let slot = active.first(where: { slots[$0].handle == easy }) else { continue }
            let result = message.pointee.data.result
            curl_multi_remove_handle(multi, easy)
            active.remove(slot)
            let outcome = Result { () throws(SMTPError) -> SMTPReceipt in try slots[slot].finish(result) }
            if case .failure(let error) = outcome {
                switch error {
                case .transient, .outcomeUnknown, .sessionRefused:
                    // The connection's state is in doubt: the next message gets a new one.
                    slots[slot].freshConnection = true
                default: break
                }
            }
            done.append((slot, outcome))
        }
        return done
    }

    /// Waits for network activity, a `wakeup`, or `timeout` seconds, whichever comes
    /// first. With `ready`, also asks `wakeup` to interrupt the wait, and does not wait
    /// at all when `ready()` is already true once that request is in place.
    func wait(timeout: Double, unless ready: (() -> Bool)? = nil) {
        if let ready {
            wakeLock.withLock { wantsWakeup = true }
            if ready() {
                wakeLock.withLock { wantsWakeup = false }
                return
            }
        }
        var count: Int32 = 0
        _ = curl_multi_poll(multi, nil, 0, Int32(max(0, min(timeout, 1)) * 1000), &count)
        if ready != nil { wakeLock.withLock { wantsWakeup = false } }
    }

    /// Interrupts a `wait` that asked for it (or makes the next such wait return at once).
    /// Thread-safe; costs nothing when no wait asked.
    func wakeup() {
        let wanted = wakeLock.withLock {
            defer { wantsWakeup = false }
            return wantsWakeup
        }
        if wanted { _ = curl_multi_wakeup(multi) }
    }
}
