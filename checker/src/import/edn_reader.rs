//! A reader for the part of EDN that Jepsen histories use: maps, vectors, lists, sets, keywords,
//! symbols, strings, integers, floats, `nil`, booleans and characters; tags such as
//! `#jepsen.history.Op{...}` are read as the tagged value, `#_` discards a form, `;` comments.
//! It tracks lines, so every error and every top-level form has one.
//!
//! Nesting is bounded ([`MAX_DEPTH`]): the reader is recursive, and a hostile file of 100,000
//! `[` would otherwise overflow the stack and abort the process instead of being refused.

use serde_json::{Map, Number, Value};

/// How many forms may be open around a form: vectors, lists, maps and sets, and tags and
/// `#_` (whose form is read inside them), each count a level. 128, as serde_json allows JSON to nest: an operation of a Jepsen
/// history nests a few levels (a transaction's micro-operations inside its value), and 128
/// levels of this reader's frames fit well within any thread's stack.
pub const MAX_DEPTH: usize = 128;

/// An EDN value.
#[derive(Clone, Debug, PartialEq)]
pub enum Edn {
    /// `nil`.
    Nil,
    /// `true` or `false`.
    Bool(bool),
    /// An integer that fits in 64 bits.
    Integer(i64),
    /// A floating point number.
    Float(f64),
    /// A string or a character.
    String(String),
    /// A keyword, without its colon: `:invoke` is `Keyword("invoke")`.
    Keyword(String),
    /// A symbol.
    Symbol(String),
    /// A vector, list or set.
    Sequence(Vec<Edn>),
    /// A map, in written order.
    Map(Vec<(Edn, Edn)>),
}

impl Edn {
    /// The keyword's, symbol's or string's text.
    pub fn as_name(&self) -> Option<&str> {
        match self {
            Edn::Keyword(name) | Edn::Symbol(name) | Edn::String(name) => Some(name),
            _ => None,
        }
    }

    /// A short description for "expected ..., found ..." messages.
    pub fn describe(&self) -> String {
        match self {
            Edn::Nil => "nil".into(),
            Edn::Bool(b) => b.to_string(),
            Edn::Integer(i) => i.to_string(),
            Edn::Float(x) => x.to_string(),
            Edn::String(s) => format!("{s:?}"),
            Edn::Keyword(k) => format!(":{k}"),
            Edn::Symbol(s) => s.clone(),
            Edn::Sequence(_) => "a vector".into(),
            Edn::Map(_) => "a map".into(),
        }
    }

    /// The JSON equivalent: keywords and symbols become strings, sequences arrays, maps objects.
    pub fn into_json(self) -> Result<Value, String> {
        Ok(match self {
            Edn::Nil => Value::Null,
            Edn::Bool(b) => Value::Bool(b),
            Edn::Integer(i) => Value::from(i),
            Edn::Float(x) => Value::Number(
                Number::from_f64(x).ok_or_else(|| format!("{x} has no JSON equivalent"))?,
            ),
            Edn::String(s) | Edn::Keyword(s) | Edn::Symbol(s) => Value::String(s),
            Edn::Sequence(items) => Value::Array(
                items
                    .into_iter()
                    .map(Edn::into_json)
                    .collect::<Result<_, _>>()?,
            ),
            Edn::Map(entries) => {
                let mut object = Map::new();
                for (key, value) in entries {
                    let key = match key.as_name() {
                        Some(name) => name.to_string(),
                        None => key.describe(),
                    };
                    object.insert(key, value.into_json()?);
                }
                Value::Object(object)
            }
        })
    }
}

/// A syntax error: the line and what was expected.
#[derive(Debug, PartialEq)]
pub struct SyntaxError {
    /// From 1.
    pub line: usize,
    /// What was found and what was expected.
    pub message: String,
}

/// Reads EDN forms one after another from a text.
#[derive(Clone)]
pub struct Reader<'a> {
    text: &'a str,
    position: usize,
    line: usize,
    /// How many forms are open around the one being read.
    depth: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `text`, which begins on line `first_line`.
    pub fn new(text: &'a str, first_line: usize) -> Self {
        Reader {
            text,
            position: 0,
            line: first_line,
            depth: 0,
        }
    }

    /// Skips whitespace, commas and comments; the next character, if any.
    pub fn peek(&mut self) -> Option<char> {
        while let Some(c) = self.rest().chars().next() {
            match c {
                ';' => {
                    let end = self.rest().find('\n').unwrap_or(self.rest().len());
                    self.position += end;
                }
                c if c.is_whitespace() || c == ',' => self.advance(c),
                _ => return Some(c),
            }
        }
        None
    }

    /// Consumes the next character, which [`Reader::peek`] returned.
    pub fn skip(&mut self, c: char) {
        self.advance(c);
    }

    /// The line the reader is on.
    pub fn line(&self) -> usize {
        self.line
    }

    /// How many bytes of the text the reader has gone past.
    pub fn offset(&self) -> usize {
        self.position
    }

    /// Reads the next form; `None` at the end of the text. A form inside more than
    /// [`MAX_DEPTH`] others is an error on the line where the limit was passed.
    pub fn next_form(&mut self) -> Result<Option<Edn>, SyntaxError> {
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!(
                "forms nested deeper than {MAX_DEPTH} levels (vectors, lists, maps, sets, tags \
                 or #_); an operation nests a few"
            )));
        }
        self.depth += 1;
        let form = self.form();
        self.depth -= 1;
        form
    }

    /// [`Reader::next_form`] without the count of levels.
    fn form(&mut self) -> Result<Option<Edn>, SyntaxError> {
        loop {
            let Some(c) = self.peek() else {
                return Ok(None);
            };
            let start = self.line;
            match c {
                '{' | '[' | '(' => {
                    self.skip(c);
                    let close = match c {
                        '{' => '}',
                        '[' => ']',
                        _ => ')',
                    };
                    let items = self.items_until(close, start)?;
                    return if c == '{' {
                        self.map(items, start).map(Some)
                    } else {
                        Ok(Some(Edn::Sequence(items)))
                    };
                }
                ')' | ']' | '}' => return Err(self.error(format!("unexpected '{c}'"))),
                '"' => return self.string(start).map(|s| Some(Edn::String(s))),
                '\\' => {
                    self.skip(c);
                    return self.character().map(Some);
                }
                '#' => {
                    self.skip(c);
                    match self.rest().chars().next() {
                        Some('{') => {
                            self.skip('{');
                            return Ok(Some(Edn::Sequence(self.items_until('}', start)?)));
                        }
                        Some('_') => {
                            self.skip('_');
                            self.required_form("a form after #_")?;
                        }
                        // A tag such as #inst or #jepsen.history.Op: the tagged value stands for itself.
                        _ => {
                            self.token();
                            return self.required_form("a value after the tag").map(Some);
                        }
                    }
                }
                ':' => {
                    self.skip(c);
                    let name = self.token();
                    if name.is_empty() {
                        return Err(self.error("expected a keyword name after ':'"));
                    }
                    return Ok(Some(Edn::Keyword(name.to_string())));
                }
                _ => return self.atom().map(Some),
            }
        }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.position..]
    }

    fn advance(&mut self, c: char) {
        if c == '\n' {
            self.line += 1;
        }
        self.position += c.len_utf8();
    }

    fn error(&self, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            line: self.line,
            message: message.into(),
        }
    }

    fn required_form(&mut self, expected: &str) -> Result<Edn, SyntaxError> {
        self.next_form()?
            .ok_or_else(|| self.error(format!("expected {expected}, found the end of the input")))
    }

    /// The forms up to the closing delimiter.
    fn items_until(&mut self, close: char, start: usize) -> Result<Vec<Edn>, SyntaxError> {
        let mut items = Vec::new();
        loop {
            match self.peek() {
                None => {
                    return Err(self.error(format!(
                        "expected '{close}' to close what line {start} opened, found the end of the input"
                    )));
                }
                Some(c) if c == close => {
                    self.skip(c);
                    return Ok(items);
                }
                Some(c @ (')' | ']' | '}')) => {
                    return Err(self.error(format!(
                        "expected '{close}' to close what line {start} opened, found '{c}'"
                    )));
                }
                Some(_) => items.extend(self.next_form()?),
            }
        }
    }

    fn map(&self, items: Vec<Edn>, start: usize) -> Result<Edn, SyntaxError> {
        if !items.len().is_multiple_of(2) {
            return Err(SyntaxError {
                line: start,
                message: "expected a value for every key of the map that starts here".into(),
            });
        }
        let mut entries = Vec::with_capacity(items.len() / 2);
        let mut items = items.into_iter();
        while let (Some(key), Some(value)) = (items.next(), items.next()) {
            entries.push((key, value));
        }
        Ok(Edn::Map(entries))
    }

    fn string(&mut self, start: usize) -> Result<String, SyntaxError> {
        self.skip('"');
        let mut text = String::new();
        let mut chars = self.rest().chars();
        loop {
            let Some(c) = chars.next() else {
                return Err(SyntaxError {
                    line: start,
                    message: "expected '\"' to close the string that starts here".into(),
                });
            };
            self.advance(c);
            match c {
                '"' => return Ok(text),
                '\\' => {
                    let escaped = chars.next();
                    if let Some(e) = escaped {
                        self.advance(e);
                    }
                    match escaped {
                        Some('n') => text.push('\n'),
                        Some('t') => text.push('\t'),
                        Some('r') => text.push('\r'),
                        Some('"') => text.push('"'),
                        Some('\\') => text.push('\\'),
                        Some('u') => {
                            let hex: String = chars.by_ref().take(4).collect();
                            self.position += hex.len();
                            let code = u32::from_str_radix(&hex, 16)
                                .ok()
                                .and_then(char::from_u32)
                                .ok_or_else(|| {
                                    self.error(format!(
                                        "expected four hex digits after \\u, found {hex:?}"
                                    ))
                                })?;
                            text.push(code);
                        }
                        other => {
                            return Err(self.error(format!(
                                "expected an escape (\\n \\t \\r \\\" \\\\ \\uXXXX) in the string, found \\{}",
                                other.map(String::from).unwrap_or_default()
                            )));
                        }
                    }
                }
                c => text.push(c),
            }
        }
    }

    fn character(&mut self) -> Result<Edn, SyntaxError> {
        let Some(first) = self.rest().chars().next() else {
            return Err(self.error("expected a character after '\\'"));
        };
        self.skip(first);
        let name = format!("{first}{}", self.token());
        let c = match name.as_str() {
            "newline" => '\n',
            "space" => ' ',
            "tab" => '\t',
            "return" => '\r',
            _ if name.chars().count() == 1 => first,
            _ => return Err(self.error(format!("expected a character, found \\{name}"))),
        };
        Ok(Edn::String(c.to_string()))
    }

    /// A number, `nil`, a boolean or a symbol.
    fn atom(&mut self) -> Result<Edn, SyntaxError> {
        let token = self.token();
        if token.is_empty() {
            let c = self.rest().chars().next().unwrap_or(' ');
            return Err(self.error(format!("expected a value, found '{c}'")));
        }
        let unsigned = token.strip_prefix(['+', '-']).unwrap_or(token);
        if unsigned.starts_with(|c: char| c.is_ascii_digit()) {
            return self.number(token);
        }
        Ok(match token {
            "nil" => Edn::Nil,
            "true" => Edn::Bool(true),
            "false" => Edn::Bool(false),
            _ => Edn::Symbol(token.to_string()),
        })
    }

    fn number(&self, token: &str) -> Result<Edn, SyntaxError> {
        let invalid = || self.error(format!("expected a number, found {token}"));
        if let Some(integer) = token.strip_suffix('N') {
            return integer.parse().map(Edn::Integer).map_err(|_| invalid());
        }
        let decimal = token.strip_suffix('M').unwrap_or(token);
        if decimal.contains(['.', 'e', 'E']) {
            return decimal.parse().map(Edn::Float).map_err(|_| invalid());
        }
        token.parse().map(Edn::Integer).map_err(|_| invalid())
    }

    /// The characters up to the next delimiter.
    fn token(&mut self) -> &'a str {
        let rest = self.rest();
        let end = rest
            .find(|c: char| c.is_whitespace() || "{}[]()\",;".contains(c))
            .unwrap_or(rest.len());
        self.position += end;
        &rest[..end]
    }
}

/// Reads exactly one form from `text` (which is on line `line`).
pub fn read_one(text: &str, line: usize) -> Result<Edn, SyntaxError> {
    let mut reader = Reader::new(text, line);
    let form = reader.required_form("a value")?;
    match reader.peek() {
        None => Ok(form),
        Some(c) => Err(reader.error(format!(
            "expected the end of the value, found '{c}' after it"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn forms(text: &str) -> Result<Vec<Edn>, SyntaxError> {
        let mut reader = Reader::new(text, 1);
        let mut forms = Vec::new();
        while let Some(form) = reader.next_form()? {
            forms.push(form);
        }
        Ok(forms)
    }

    #[test]
    fn reads_a_jepsen_operation_as_json() {
        let op = read_one(
            r#"{:process 9, :type :invoke, :f :cas, :key "0", :value [3 nil], :time 12N, :x 1.5 :ok? true}"#,
            1,
        )
        .unwrap();
        assert_eq!(
            op.into_json().unwrap(),
            json!({"process": 9, "type": "invoke", "f": "cas", "key": "0", "value": [3, null],
                   "time": 12, "x": 1.5, "ok?": true})
        );
    }

    #[test]
    fn reads_strings_characters_sets_tags_and_comments() {
        let all = forms(
            "; a comment\n\"a\\\"b\\n\\u0041\" \\c \\newline #{1 2} #jepsen.history.Op{:f :read} #_ :gone (x -3)",
        )
        .unwrap();
        assert_eq!(
            all,
            vec![
                Edn::String("a\"b\nA".into()),
                Edn::String("c".into()),
                Edn::String("\n".into()),
                Edn::Sequence(vec![Edn::Integer(1), Edn::Integer(2)]),
                Edn::Map(vec![(
                    Edn::Keyword("f".into()),
                    Edn::Keyword("read".into())
                )]),
                Edn::Sequence(vec![Edn::Symbol("x".into()), Edn::Integer(-3)]),
            ]
        );
    }

    #[test]
    fn errors_name_the_line_and_what_was_expected() {
        assert_eq!(
            forms("{:a 1}\n{:b 2\n").unwrap_err(),
            SyntaxError {
                line: 3,
                message: "expected '}' to close what line 2 opened, found the end of the input"
                    .into()
            }
        );
        assert_eq!(
            forms("\n{:a 1 :b}").unwrap_err(),
            SyntaxError {
                line: 2,
                message: "expected a value for every key of the map that starts here".into()
            }
        );
        assert_eq!(
            forms("[1 2}").unwrap_err().message,
            "expected ']' to close what line 1 opened, found '}'"
        );
        assert_eq!(
            forms("\n\n\"abc").unwrap_err(),
            SyntaxError {
                line: 3,
                message: "expected '\"' to close the string that starts here".into()
            }
        );
        assert_eq!(
            forms("99999999999999999999").unwrap_err().message,
            "expected a number, found 99999999999999999999"
        );
        assert_eq!(
            read_one("[1 2] 3", 7).unwrap_err(),
            SyntaxError {
                line: 7,
                message: "expected the end of the value, found '3' after it".into()
            }
        );
    }
}
