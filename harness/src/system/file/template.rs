//! Command templates: argv arrays whose words may hold `{placeholder}`s, filled in for each
//! node or client. No shell is involved, so a value with spaces stays one word; `{{` and `}}`
//! stand for literal braces.

use std::fmt;

/// One piece of a word: text as written, or a placeholder to fill in.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Placeholder(String),
}

/// A command (program and arguments) whose words may hold placeholders, checked against
/// the placeholders its field offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    words: Vec<Vec<Piece>>,
}

/// Why a command cannot be a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateError {
    /// No program.
    Empty,
    /// An empty program name.
    EmptyProgram,
    /// `{` without its `}`, or a `}` alone.
    Unbalanced { word: String },
    /// A placeholder this field does not offer.
    Unknown {
        name: String,
        known: &'static [&'static str],
    },
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::Empty => write!(f, "the command is empty; give at least the program"),
            TemplateError::EmptyProgram => write!(f, "the program's name is empty"),
            TemplateError::Unbalanced { word } => write!(
                f,
                "unbalanced brace in {word:?} (a placeholder is {{name}}; write {{{{ and }}}} for \
                 a literal brace)"
            ),
            TemplateError::Unknown { name, known } => {
                let known: Vec<String> = known.iter().map(|name| format!("{{{name}}}")).collect();
                write!(
                    f,
                    "unknown placeholder {{{name}}} (known here: {})",
                    known.join(" ")
                )
            }
        }
    }
}

impl Template {
    /// Parses `argv`, whose placeholders must be among `known`.
    pub fn parse(
        argv: &[String],
        known: &'static [&'static str],
    ) -> Result<Template, TemplateError> {
        let words = argv
            .iter()
            .map(|word| parse_word(word, known))
            .collect::<Result<Vec<_>, _>>()?;
        match words.first() {
            None => Err(TemplateError::Empty),
            Some(program) if program.is_empty() => Err(TemplateError::EmptyProgram),
            Some(_) => Ok(Template { words }),
        }
    }

    /// The command with every placeholder replaced by `value(name)`.
    pub fn render(&self, value: impl Fn(&str) -> String) -> Vec<String> {
        self.words
            .iter()
            .map(|pieces| {
                pieces
                    .iter()
                    .map(|piece| match piece {
                        Piece::Text(text) => text.clone(),
                        Piece::Placeholder(name) => value(name),
                    })
                    .collect()
            })
            .collect()
    }

    /// Whether any word holds the placeholder `name`.
    pub fn uses(&self, name: &str) -> bool {
        (self.words.iter().flatten())
            .any(|piece| matches!(piece, Piece::Placeholder(p) if p == name))
    }

    /// The program, when it holds no placeholder (so it can be looked for before the run).
    pub fn literal_program(&self) -> Option<&str> {
        match self.words.first()?.as_slice() {
            [Piece::Text(program)] => Some(program),
            _ => None,
        }
    }
}

fn parse_word(word: &str, known: &'static [&'static str]) -> Result<Vec<Piece>, TemplateError> {
    let unbalanced = || TemplateError::Unbalanced {
        word: word.to_string(),
    };
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = word.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                text.push('}');
            }
            '}' => return Err(unbalanced()),
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some('{') | None => return Err(unbalanced()),
                        Some(c) => name.push(c),
                    }
                }
                if !known.contains(&name.as_str()) {
                    return Err(TemplateError::Unknown { name, known });
                }
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Placeholder(name));
            }
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[&str] = &["id", "data_dir"];

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn placeholders_are_filled_in_word_by_word_and_doubled_braces_are_literal() {
        let template = Template::parse(
            &argv(&["node", "--id={id}", "{data_dir}/wal", "{{\"x\": {{}}}}"]),
            KNOWN,
        )
        .unwrap();
        let words = template.render(|name| match name {
            "id" => "n1".to_string(),
            _ => "/data dir".to_string(),
        });
        assert_eq!(words, ["node", "--id=n1", "/data dir/wal", "{\"x\": {}}"]);
        assert_eq!(template.literal_program(), Some("node"));
    }

    #[test]
    fn unknown_placeholders_unbalanced_braces_and_empty_commands_are_refused() {
        let error = Template::parse(&argv(&["node", "{dta_dir}"]), KNOWN).unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown placeholder {dta_dir} (known here: {id} {data_dir})"
        );
        for word in ["{id", "id}", "{{id}", "{a{b}"] {
            let error = Template::parse(&argv(&["node", word]), KNOWN).unwrap_err();
            assert!(
                matches!(error, TemplateError::Unbalanced { .. }),
                "{word}: {error}"
            );
        }
        assert_eq!(Template::parse(&[], KNOWN), Err(TemplateError::Empty));
        assert_eq!(
            Template::parse(&argv(&["", "x"]), KNOWN),
            Err(TemplateError::EmptyProgram)
        );
    }

    #[test]
    fn a_program_made_of_placeholders_cannot_be_looked_for_before_the_run() {
        let template = Template::parse(&argv(&["{data_dir}/run"]), KNOWN).unwrap();
        assert_eq!(template.literal_program(), None);
    }
}
