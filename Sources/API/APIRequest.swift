import NIOCore
import NIOHTTP1

/// One complete request, handed from the event loop to the router.
struct APIRequest: Sendable {
    let method: HTTPMethod
    /// The URI's path: an absolute-form target (`http://localhost/api/v1/…`) loses its scheme and host,
    /// any target its query.
    let path: String
    /// `nil` when the request has no body or an empty one (`Content-Length: 0`, as `curl -d ''` sends),
    /// which CH also treats as no body.
    let body: ByteBuffer?

    init(method: HTTPMethod, uri: String, body: ByteBuffer?) {
        self.method = method
        var target = Substring(uri)
        if let scheme = target.range(of: "://") {
            let rest = target[scheme.upperBound...]
            target = rest.firstIndex(of: "/").map { rest[$0...] } ?? "/"
        }
        self.path = String(target.prefix { $0 != "?" && $0 != "#" })
        self.body = body.flatMap { $0.readableBytes > 0 ? $0 : nil }
    }
}
