import Foundation

/// Number formatting that does not depend on the machine's locale.
public enum Number {
    /// 12345 → "12,345".
    public static func grouped(_ value: Int64) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (index, character) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(character)
        }
        return value < 0 ? "-" + out : out
    }

    /// 12.0 → "12", 3.25 → "3.3".
    public static func decimal(_ value: Double) -> String {
        value == value.rounded() ? grouped(Int64(value)) : String(format: "%.1f", value)
    }

    /// 21.2 → "21.2%", 50.0 → "50%".
    public static func percent(_ value: Double) -> String {
        value == value.rounded() ? "\(Int64(value))%" : String(format: "%.1f%%", value)
    }
}
