import NIOHTTP1
import VMM

/// What REST adds to a shared `APIEndpoint`: the only method CH answers to there, and the status of a
/// success without data.
struct Endpoint: Sendable {
    let shared: APIEndpoint
    let method: HTTPMethod
    /// 204, but vmm.shutdown's is a body-less 200.
    let emptySuccess: APIResponse

    static let prefix = "/api/v1/"

    /// Keyed by the name after `/api/v1/`.
    static let all: [String: Endpoint] = APIEndpoint.named.mapValues(Endpoint.init)

    /// CH serves these as GET; everything else is PUT.
    private static let gets: Set = ["vmm.ping", "vm.info", "vm.counters", "vm.migration-progress"]

    private init(_ shared: APIEndpoint) {
        self.shared = shared
        method = Self.gets.contains(shared.name) ? .GET : .PUT
        emptySuccess = shared.name == "vmm.shutdown" ? .emptyOK : .noContent
    }
}

extension APIServer {
    /// Every path served (`/api/v1/vm.boot`, …) with its one method, so that the OpenAPI document
    /// (docs/openapi.json) can be checked against what the router really answers.
    public static var routes: [String: String] {
        Dictionary(uniqueKeysWithValues: Endpoint.all.map { (Endpoint.prefix + $0.key, $0.value.method.rawValue) })
    }
}
