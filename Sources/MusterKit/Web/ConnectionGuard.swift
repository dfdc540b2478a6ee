import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Deadlines and a size limit on each connection, so slow or greedy clients cannot pin
/// the server (slow-loris headers, slow bodies, endless bodies):
///
/// - a request's head (request line and headers) must have arrived `headTimeout`
///   after the connection opened, or after the previous response was sent;
/// - its body must have arrived `bodyTimeout` after its head;
/// - a body may not exceed `maxBodyBytes` (routes set smaller limits of their own: the
///   sign form's 64 KiB gets a 413 page).
///
/// A request that says `Expect: 100-continue` is answered `100 Continue` as soon as its
/// head is read.
///
/// A connection that misses a deadline or exceeds the limit is closed, with nothing
/// recorded: a request is acted on only once it is whole. The idle time-out (no byte
/// either way) stays as a further bound.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    struct Limits: Sendable {
        var headTimeout: TimeAmount
        var bodyTimeout: TimeAmount
        var maxBodyBytes: Int
    }

    private let limits: Limits
    private var timer: Scheduled<Void>?
    private var bodyBytes = 0
    private var closed = false

    init(_ limits: Limits) { self.limits = limits }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context, limits.headTimeout) }
        // HTTP/1.0 (text browsers such as lynx) needs the version, which the codec to
        // HTTP types drops: look at it before.
        if let codec = try? context.pipeline.syncOperations.handler(type: HTTP1ToHTTPServerCodec.self) {
            try? context.pipeline.syncOperations.addHandler(OneRequestConnections(), position: .before(codec))
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context, limits.headTimeout)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) { disarm() }

    func channelInactive(context: ChannelHandlerContext) {
        disarm()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closed else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            bodyBytes = 0
            arm(context, limits.bodyTimeout)
            // RFC 9110 §10.1.1: a client that asked may send its body once told to (curl
            // does for large bodies); the answer also tells it the head was read whole.
            if head.headerFields[.expect]?.lowercased() == "100-continue" {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
            }
        case .body(let buffer):
            bodyBytes += buffer.readableBytes
            if bodyBytes > limits.maxBodyBytes {
                close(context)
                return
            }
        case .end:
            disarm()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            // The next request's head has its own deadline, from the end of this response.
            arm(context, limits.headTimeout)
        }
        context.write(data, promise: promise)
    }

    private func arm(_ context: ChannelHandlerContext, _ delay: TimeAmount) {
        disarm()
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: delay) {
            let (handler, context) = loopBound.value
            handler.close(context)
        }
    }

    private func disarm() {
        timer?.cancel()
        timer = nil
    }

    private func close(_ context: ChannelHandlerContext) {
        guard !closed else { return }
        closed = true
        disarm()
        context.close(promise: nil)
    }
}

/// Closes the connection after the response when the client asked for no other request
/// on it: HTTP/1.0 without `Connection: keep-alive` (lynx sends that and waits for the
/// close), or `Connection: close`. Marks such a request `Connection: close` for the
/// server, which then closes after answering, and says so in the response's head
/// (RFC 9112 §9.6). Without it an HTTP/1.0 client waited for the idle time-out (found by
/// the text-browser test).
final class OneRequestConnections: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Whether each request read and not yet answered ends its connection, in order.
    private var closing: [Bool] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var head) = unwrapInboundIn(data) else { return context.fireChannelRead(data) }
        closing.append(!head.isKeepAlive)
        if !head.isKeepAlive {
            head.headers.replaceOrAdd(name: "connection", value: "close")
            return context.fireChannelRead(wrapInboundOut(.head(head)))
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .head(var head) = unwrapOutboundIn(data), head.status.code >= 200, !closing.isEmpty, closing.removeFirst() {
            head.headers.replaceOrAdd(name: "connection", value: "close")
            return context.write(wrapOutboundOut(.head(head)), promise: promise)
        }
        context.write(data, promise: promise)
    }
}
