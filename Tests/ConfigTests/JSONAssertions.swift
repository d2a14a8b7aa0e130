import Foundation
import XCTest

/// Compares JSON by meaning (key order and whitespace ignored; a missing key differs from `null`), so tests can
/// state CH's exact output shape.
func assertJSON(_ value: some Encodable, equals expected: String, file: StaticString = #filePath, line: UInt = #line) {
    do {
        let actual = try JSONSerialization.jsonObject(with: JSONEncoder().encode(value)) as? NSDictionary
        let wanted = try JSONSerialization.jsonObject(with: Data(expected.utf8)) as? NSDictionary
        XCTAssertNotNil(wanted, "expected JSON is not an object", file: file, line: line)
        if actual != wanted {
            let text = String(decoding: try JSONEncoder.sorted.encode(value), as: UTF8.self)
            XCTFail("JSON differs.\nactual:   \(text)\nexpected: \(expected)", file: file, line: line)
        }
    } catch {
        XCTFail("\(error)", file: file, line: line)
    }
}

func decodeJSON<T: Decodable>(_ type: T.Type, _ json: String) throws -> T {
    try JSONDecoder().decode(type, from: Data(json.utf8))
}

/// Asserts decoding fails and the readable summary names `field`.
func assertDecodingFails<T: Decodable>(_ type: T.Type, _ json: String, naming field: String,
                                       file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try decodeJSON(type, json), file: file, line: line) { error in
        guard let error = error as? DecodingError else { return XCTFail("not a DecodingError: \(error)", file: file, line: line) }
        XCTAssertTrue(error.summary.contains(field), "'\(error.summary)' does not name \(field)", file: file, line: line)
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = .sortedKeys
        return e
    }
}
