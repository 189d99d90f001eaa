//! A walk over `config.json` that knows where it is. Every value is taken
//! by name from its object, with its type checked, and an object must be
//! empty when its reader is done with it: so an unknown field, a field of
//! the wrong type and a value out of range are all reported with the JSON
//! path of the value (`process.user.uid`), as the reference's dispatch
//! tables report them (nspawn-oci.c). serde's derive would give "unknown
//! field" without the path, and could not tell an unknown field from one
//! the runtime-spec defines but we do not support.

use serde_json::{Map, Value};

/// A failure at a JSON path: `linux.intelRdt: not supported`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError {
    pub path: String,
    pub msg: String,
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.path.is_empty() {
            true => write!(f, "{}", self.msg),
            false => write!(f, "{}: {}", self.path, self.msg),
        }
    }
}

pub type Result<T> = std::result::Result<T, PathError>;

pub fn err<T>(path: &str, msg: impl std::fmt::Display) -> Result<T> {
    Err(PathError {
        path: path.to_string(),
        msg: msg.to_string(),
    })
}

/// `a.b` + `c` = `a.b.c`; the top level has no prefix.
pub fn join(path: &str, key: &str) -> String {
    match path.is_empty() {
        true => key.to_string(),
        false => format!("{path}.{key}"),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One JSON value and where it is.
#[derive(Debug)]
pub struct At {
    pub path: String,
    pub value: Value,
}

impl At {
    pub fn new(path: String, value: Value) -> At {
        At { path, value }
    }

    fn wrong(&self, want: &str) -> PathError {
        PathError {
            path: self.path.clone(),
            msg: format!("expected {want}, got {}", kind(&self.value)),
        }
    }

    pub fn string(self) -> Result<String> {
        match self.value {
            Value::String(s) => Ok(s),
            _ => Err(self.wrong("a string")),
        }
    }

    pub fn bool(self) -> Result<bool> {
        match self.value {
            Value::Bool(b) => Ok(b),
            _ => Err(self.wrong("a boolean")),
        }
    }

    pub fn u64(self) -> Result<u64> {
        match self.value.as_u64() {
            Some(n) => Ok(n),
            None => Err(self.wrong("an unsigned integer")),
        }
    }

    pub fn i64(self) -> Result<i64> {
        match self.value.as_i64() {
            Some(n) => Ok(n),
            None => Err(self.wrong("an integer")),
        }
    }

    /// A 32-bit id (uid, gid): below 2^32 - 1, which means "none".
    pub fn id(self) -> Result<u32> {
        let path = self.path.clone();
        match self.u64()? {
            n if n < u32::MAX as u64 => Ok(n as u32),
            n => err(&path, format!("{n} is not a valid uid or gid")),
        }
    }

    pub fn object(self) -> Result<Obj> {
        match self.value {
            Value::Object(map) => Ok(Obj {
                path: self.path,
                map,
            }),
            _ => Err(self.wrong("an object")),
        }
    }

    /// The elements, each with its index in the path.
    pub fn array(self) -> Result<Vec<At>> {
        match self.value {
            Value::Array(items) => Ok(items
                .into_iter()
                .enumerate()
                .map(|(i, v)| At::new(format!("{}[{i}]", self.path), v))
                .collect()),
            _ => Err(self.wrong("an array")),
        }
    }

    pub fn strings(self) -> Result<Vec<String>> {
        self.array()?.into_iter().map(At::string).collect()
    }
}

/// An object being read: fields are taken out of it, and `done` fails on
/// the first one nobody took.
#[derive(Debug)]
pub struct Obj {
    pub path: String,
    map: Map<String, Value>,
}

impl Obj {
    /// The field, if present (`null` counts as absent, as Go's encoder
    /// writes it for unset pointers).
    pub fn take(&mut self, key: &str) -> Option<At> {
        match self.map.remove(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some(At::new(join(&self.path, key), v)),
        }
    }

    /// The field, which must be present.
    pub fn need(&mut self, key: &str) -> Result<At> {
        self.take(key).ok_or_else(|| PathError {
            path: join(&self.path, key),
            msg: "missing".into(),
        })
    }

    /// Fields the runtime-spec defines that we do not implement: refused
    /// by name, whatever their value.
    pub fn unsupported(&mut self, keys: &[&str]) -> Result<()> {
        for k in keys {
            if let Some(at) = self.take(k) {
                return err(&at.path, "not supported");
            }
        }
        Ok(())
    }

    /// Fields whose value has no effect here (documented in the spec as
    /// hints, or settings the reference ignores too).
    pub fn ignore(&mut self, keys: &[&str]) {
        for k in keys {
            self.map.remove(*k);
        }
    }

    /// The remaining fields, by name (in key order: serde_json keeps none
    /// other).
    pub fn entries(self) -> Vec<(String, At)> {
        let path = self.path;
        self.map
            .into_iter()
            .map(|(k, v)| {
                let p = join(&path, &k);
                (k, At::new(p, v))
            })
            .collect()
    }

    /// Every field was read: anything left is unknown.
    pub fn done(self) -> Result<()> {
        match self.map.keys().next() {
            Some(k) => err(&join(&self.path, k), "unknown field"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(text: &str) -> Obj {
        At::new(String::new(), serde_json::from_str(text).unwrap())
            .object()
            .unwrap()
    }

    #[test]
    fn paths_name_the_value() {
        let mut o = obj(r#"{"a": {"b": [1, "x"]}, "c": null}"#);
        assert!(o.take("c").is_none());
        let mut a = o.need("a").unwrap().object().unwrap();
        let b = a.need("b").unwrap().array().unwrap();
        let mut it = b.into_iter();
        assert_eq!(it.next().unwrap().u64().unwrap(), 1);
        let e = it.next().unwrap().u64().unwrap_err();
        assert_eq!(
            e.to_string(),
            "a.b[1]: expected an unsigned integer, got a string"
        );
        assert_eq!(o.need("z").unwrap_err().to_string(), "z: missing");
    }

    #[test]
    fn leftovers_are_unknown() {
        let mut o = obj(r#"{"known": 1, "bogus": 2}"#);
        o.take("known");
        assert_eq!(o.done().unwrap_err().to_string(), "bogus: unknown field");
        let mut o = obj(r#"{"intelRdt": {}}"#);
        assert_eq!(
            o.unsupported(&["intelRdt"]).unwrap_err().to_string(),
            "intelRdt: not supported"
        );
    }

    #[test]
    fn ids() {
        let id = |v: &str| At::new("u".into(), serde_json::from_str(v).unwrap()).id();
        assert_eq!(id("1000").unwrap(), 1000);
        assert!(id("4294967295").is_err());
        assert!(id("-1").is_err());
    }
}
