public enum MusterKitVersion { public static let string = "0.1.0" }
