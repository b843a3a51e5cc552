import Foundation

/// Typed access to a parsed JSON object, with errors that name the file and key.
struct JSONObject {
    let path: String
    let values: [String: Any]

    init(path: String, values: [String: Any]) {
        self.path = path
        self.values = values
    }

    /// Reads and parses the JSON object stored at `url`.
    static func read(_ url: URL, purpose: String) throws -> JSONObject {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw ModelError.missingFile(url.path, purpose: purpose)
        }
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw ModelError.invalidJSON(url.path, "\(error.localizedDescription)")
        }
        guard let object = parsed as? [String: Any] else {
            throw ModelError.invalidJSON(url.path, "the top level is not an object")
        }
        return JSONObject(path: url.path, values: object)
    }

    func has(_ key: String) -> Bool {
        if let value = values[key], !(value is NSNull) { return true }
        return false
    }

    func int(_ key: String) throws -> Int {
        guard let number = values[key] as? NSNumber, let value = Int(exactly: number.doubleValue) else {
            throw ModelError.invalidField(path, key: key, rule: "must be an integer")
        }
        return value
    }

    func int(_ key: String, default fallback: Int) throws -> Int {
        has(key) ? try int(key) : fallback
    }

    func double(_ key: String, default fallback: Double) throws -> Double {
        guard has(key) else { return fallback }
        guard let number = values[key] as? NSNumber else {
            throw ModelError.invalidField(path, key: key, rule: "must be a number")
        }
        return number.doubleValue
    }

    func string(_ key: String) throws -> String {
        guard let value = values[key] as? String else {
            throw ModelError.invalidField(path, key: key, rule: "must be a string")
        }
        return value
    }

    func string(_ key: String, default fallback: String?) throws -> String? {
        has(key) ? try string(key) : fallback
    }

    func bool(_ key: String, default fallback: Bool) throws -> Bool {
        guard has(key) else { return fallback }
        guard let value = values[key] as? Bool else {
            throw ModelError.invalidField(path, key: key, rule: "must be true or false")
        }
        return value
    }

    func object(_ key: String) throws -> JSONObject {
        guard let value = values[key] as? [String: Any] else {
            throw ModelError.invalidField(path, key: key, rule: "must be an object")
        }
        return JSONObject(path: path, values: value)
    }

    func optionalObject(_ key: String) throws -> JSONObject? {
        has(key) ? try object(key) : nil
    }

    func array(_ key: String) throws -> [Any] {
        guard let value = values[key] as? [Any] else {
            throw ModelError.invalidField(path, key: key, rule: "must be an array")
        }
        return value
    }

    /// The elements of the array at `key` that are objects.
    func objects(_ key: String) throws -> [JSONObject] {
        try array(key).enumerated().map { index, element in
            guard let value = element as? [String: Any] else {
                throw ModelError.invalidField(path, key: "\(key)[\(index)]", rule: "must be an object")
            }
            return JSONObject(path: path, values: value)
        }
    }
}
