//! [`Name`]: a string that many events repeat (a function, a key, an error, a node), held
//! once and shared.
//!
//! A history of ten million operations names a few functions and some thousands of keys
//! tens of millions of times: a `String` each would cost a heap block per mention. A `Name`
//! is one pointer wide (an `Option<Name>` too), and cloning it only counts a reference.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An immutable, shared string. It reads as a `&str` (by [`Deref`]), compares, orders and
/// hashes as its text, and is written to JSON as a string.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
// `Arc<Box<str>>` rather than `Arc<str>`: a thin pointer, 8 bytes instead of 16, which counts
// when every event holds four.
pub struct Name(Arc<Box<str>>);

impl Name {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the two are one shared copy, not only equal.
    #[cfg(test)]
    pub(crate) fn shares_text_with(&self, other: &Name) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Deref for Name {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// So that a set of names can be searched by a `&str` (the reader's table of names).
impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

// By hand, to hash exactly as the `str` it borrows as (which `Borrow` requires).
impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl From<&str> for Name {
    fn from(text: &str) -> Self {
        Name(Arc::new(text.into()))
    }
}

impl From<String> for Name {
    fn from(text: String) -> Self {
        Name(Arc::new(text.into_boxed_str()))
    }
}

impl From<Name> for String {
    fn from(name: Name) -> Self {
        name.as_str().to_string()
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

/// As the string, quotes and all: `"k7"`.
impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Name::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_reads_compares_and_prints_as_its_text() {
        let name = Name::from("k7");
        assert_eq!(name, "k7");
        assert_eq!(name, Name::from(String::from("k7")));
        assert_eq!(name.len(), 2);
        assert_eq!(format!("{name} {name:?}"), "k7 \"k7\"");
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"k7\"");
        assert_eq!(serde_json::from_str::<Name>("\"k7\"").unwrap(), name);
        let mut names = vec![Name::from("b"), Name::from("a")];
        names.sort();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(size_of::<Option<Name>>(), size_of::<usize>());
    }
}
