import Foundation
import TestSupport
import XCTest

/// Cloud Hypervisor's documented REST example against the real VMM and a real guest: the `vm.create`
/// body of CH's docs/api.md verbatim but for the kernel path (its disk image and TAP address included),
/// then boot, info, reboot, shutdown with CH's status codes. The guest proves each step on its
/// virtio-console (CH's default `console: Tty`, the VMM's stdout).
final class DocumentedExampleTests: XCTestCase {
    override func setUpWithError() throws {
        try Require.kvm()
        try Require.checkguest()
        _ = try Require.tool("curl")
    }

    func testTheDocumentedCreateBootInfoRebootShutdown() throws {
        // The image the example names; created (sparse) when absent, and removed only if created here.
        let image = "/opt/clh/images/focal-server-cloudimg-amd64.raw"
        var created = false
        if !FileManager.default.fileExists(atPath: image) {
            try FileManager.default.createDirectory(atPath: "/opt/clh/images", withIntermediateDirectories: true)
            XCTAssertTrue(FileManager.default.createFile(atPath: image, contents: nil))
            XCTAssertEqual(truncate(image, 64 << 20), 0)
            created = true
        }
        defer { if created { try? FileManager.default.removeItem(atPath: image) } }

        let dir = try ScratchDirectory("docexample")
        let socket = dir.file("api.sock")
        let vmm = try GuestProcess.vmm(["--api-socket", "path=\(socket)"])
        defer { vmm.stop() }
        let api = RESTClient(socket: socket)
        try api.waitUntilUp()
        let create = try api.put("vm.create", """
            {
                "cpus":{"boot_vcpus": 4, "max_vcpus": 4},
                "payload":{"kernel":"\(Paths.checkguest.path)", "cmdline":"console=ttyS0 console=hvc0 root=/dev/vda1 rw"},
                "disks":[{"path":"/opt/clh/images/focal-server-cloudimg-amd64.raw"}],
                "rng":{"src":"/dev/urandom"},
                "net":[{"ip":"192.168.10.10", "mask":"255.255.255.0", "mac":"12:34:56:78:90:01"}]
            }
            """)
        XCTAssertEqual(create.status, 204, create.body)
        XCTAssertEqual(try api.put("vm.boot").status, 204)
        try vmm.waitFor("VCON hello from checkguest", timeout: 30)

        let info = try api.get("vm.info")
        XCTAssertEqual(info.status, 200)
        let fields = try XCTUnwrap(info.json as? [String: Any])
        XCTAssertEqual(fields["state"] as? String, "Running")
        let config = try XCTUnwrap(fields["config"] as? [String: Any])
        XCTAssertEqual((config["cpus"] as? [String: Any])?["boot_vcpus"] as? Int, 4)
        XCTAssertEqual((config["net"] as? [[String: Any]])?.first?["mac"] as? String, "12:34:56:78:90:01")
        let tree = try XCTUnwrap(fields["device_tree"] as? [String: Any])
        for id in ["__console", "_disk0", "_net1", "__rng"] { XCTAssertNotNil(tree[id], "\(id) in \(tree.keys.sorted())") }

        XCTAssertEqual(try api.put("vm.reboot").status, 204)
        try vmm.waitFor("VCON hello from checkguest", timeout: 30)   // the guest came up again
        XCTAssertEqual(try api.put("vm.shutdown").status, 204)
        XCTAssertEqual((try api.get("vm.info").json as? [String: Any])?["state"] as? String, "Created")
    }
}
