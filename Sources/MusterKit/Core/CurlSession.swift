import CCurl

extension Curl {
    /// The options every muster connection through libcurl sets, for SMTP (sending,
    /// `smtp check`) and IMAP (`inbox`) alike: the error buffer, the URL and the only
    /// protocols allowed, no signals, the timeouts, certificate and host name checks
    /// always on, TLS (`useSSL`; nil leaves libcurl's default, as for `smtps://`), the CA
    /// file, and the login.
    ///
    /// Each option's result goes to `set` with the option's name: the caller turns a
    /// failure into its own error (and cleans up what it must). `transferTimeout`, when
    /// given, bounds the whole transfer (0: no bound).
    static func setSession<E: Error>(
        _ handle: UnsafeMutableRawPointer, errorBuffer: UnsafeMutablePointer<CChar>, url: String, protocols: String,
        connectTimeout: Double, responseTimeout: Int, transferTimeout: Double? = nil, useSSL: curl_usessl?,
        caFile: String?, username: String?, password: String?,
        _ set: (CURLcode, String) throws(E) -> Void
    ) throws(E) {
        try set(muster_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errorBuffer), "CURLOPT_ERRORBUFFER")
        try set(muster_curl_setopt_string(handle, CURLOPT_URL, url), "CURLOPT_URL")
        try set(muster_curl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, protocols), "CURLOPT_PROTOCOLS_STR")
        try set(muster_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1), "CURLOPT_NOSIGNAL")
        try set(muster_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, max(1, Int(connectTimeout * 1000))), "CURLOPT_CONNECTTIMEOUT_MS")
        try set(muster_curl_setopt_long(handle, CURLOPT_SERVER_RESPONSE_TIMEOUT, max(1, responseTimeout)), "CURLOPT_SERVER_RESPONSE_TIMEOUT")
        if let transferTimeout {
            try set(muster_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, max(0, Int(transferTimeout * 1000))), "CURLOPT_TIMEOUT_MS")
        }
        try set(muster_curl_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 1), "CURLOPT_SSL_VERIFYPEER")
        try set(muster_curl_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 2), "CURLOPT_SSL_VERIFYHOST")
        if let useSSL {
            try set(muster_curl_setopt_long(handle, CURLOPT_USE_SSL, Int(useSSL.rawValue)), "CURLOPT_USE_SSL")
        }
        if let caFile {
            try set(muster_curl_setopt_string(handle, CURLOPT_CAINFO, caFile), "CURLOPT_CAINFO")
        }
        if let username {
            try set(muster_curl_setopt_string(handle, CURLOPT_USERNAME, username), "CURLOPT_USERNAME")
            try set(muster_curl_setopt_string(handle, CURLOPT_PASSWORD, password ?? ""), "CURLOPT_PASSWORD")
        }
    }
}
