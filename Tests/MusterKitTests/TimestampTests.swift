import Foundation
import Testing
@testable import MusterKit

@Suite struct TimestampTests {
    @Test func roundTrip() throws {
        let date = try #require(Timestamp.parse("2026-11-26T12:34:56.789Z"))
        #expect(Timestamp.format(date) == "2026-11-26T12:34:56.789Z")
        #expect(Timestamp.format(try #require(Timestamp.parse("2024-02-29"))) == "2024-02-29T00:00:00.000Z")
        #expect(Timestamp.format(try #require(Timestamp.parse("2026-01-01T00:00:00+00:00"))) == "2026-01-01T00:00:00.000Z")
    }

    @Test(arguments: ["2026-02-29", "2026-13-01", "2026-11-26T25:00:00Z", "26-11-2026", "2026-11-26T12:00:00+02:00", "yesterday"])
    func refused(text: String) {
        #expect(Timestamp.parse(text) == nil)
    }
}
