import HTTPTypes
import NIOCore
import NIOHTTPTypes

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
