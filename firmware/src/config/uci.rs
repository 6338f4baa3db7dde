//! A reader for UCI files (`/etc/config/mailbag`), following libuci's `file.c` grammar.
//!
//! Grammar, as libuci parses it:
//! - one command per line, or several separated by `;`: `package NAME`, `config TYPE [NAME]`,
//!   `option NAME VALUE`, `list NAME VALUE` (the one-letter forms `p`/`c`/`o`/`l` too);
//! - a word is any run of adjacent pieces: `'single quoted'` (no escapes, may span lines),
//!   `"double quoted"` (backslash takes the next character literally, may span lines) and
//!   unquoted text (backslash likewise); `#` outside quotes starts a comment;
//! - a backslash at the end of a line joins the next line (outside single quotes);
//! - `option` replaces a value, `list` appends (turning an earlier `option` into a list);
//!   a named section that appears twice is merged, as libuci does.
//!
//! Stricter than libuci where libuci silently ignores input: extra arguments and an
//! `option` without a value are errors here, so a typo never vanishes. Every error names
//! its line. The parser is total over arbitrary text (fuzzed in `firmware/fuzz-uci`).

use std::fmt;

/// A parsed UCI file (one package).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UciPackage {
    /// The `package` name, if the file states one.
    pub name: Option<String>,
    /// Sections in file order.
    pub sections: Vec<UciSection>,
}

/// One `config TYPE ['NAME']` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UciSection {
    /// The section type (`smtp`, `relay`, ...).
    pub kind: String,
    /// The section name; `None` for an anonymous section.
    pub name: Option<String>,
    /// 1-based line of the `config` statement.
    pub line: usize,
    /// Options in file order.
    pub options: Vec<UciOption>,
}

/// One `option` or `list` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UciOption {
    /// The option name (letters, digits, `_`).
    pub name: String,
    /// Its value.
    pub value: UciValue,
    /// 1-based line of the statement that last set it.
    pub line: usize,
}

/// An option's value: one string (`option`) or several (`list`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UciValue {
    /// `option name 'value'`.
    Str(String),
    /// `list name 'a'` repeated.
    List(Vec<String>),
}

/// A syntax error, with the line it was found on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub msg: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.msg)
    }
}

impl std::error::Error for ParseError {}

impl UciSection {
    /// The option called `name`, if set.
    pub fn option(&self, name: &str) -> Option<&UciOption> {
        self.options.iter().find(|o| o.name == name)
    }
}

/// Parses UCI text.
pub fn parse(text: &str) -> Result<UciPackage, ParseError> {
    let mut lexer = Lexer {
        chars: text.chars().peekable(),
        line: 1,
    };
    let mut pkg = UciPackage::default();
    // Index of the section that `option`/`list` lines belong to.
    let mut current: Option<usize> = None;
    while let Some((line, words)) = lexer.command()? {
        let err = |msg: String| ParseError { line, msg };
        let mut words = words.into_iter();
        let Some(cmd) = words.next() else { continue };
        match cmd.as_str() {
            "package" | "p" => {
                let name = words
                    .next()
                    .ok_or_else(|| err("package without name".into()))?;
                check_name(&name, true).map_err(err)?;
                no_more(words, line)?;
                pkg.name = Some(name);
            }
            "config" | "c" => {
                let kind = words
                    .next()
                    .ok_or_else(|| err("config without type".into()))?;
                check_type(&kind).map_err(err)?;
                let name = words.next().filter(|n| !n.is_empty());
                if let Some(n) = &name {
                    check_name(n, false).map_err(err)?;
                }
                no_more(words, line)?;
                let existing = name
                    .as_ref()
                    .and_then(|n| pkg.sections.iter().position(|s| s.name.as_ref() == Some(n)));
                current = Some(match existing {
                    Some(i) => {
                        pkg.sections[i].kind = kind;
                        i
                    }
                    None => {
                        pkg.sections.push(UciSection {
                            kind,
                            name,
                            line,
                            options: Vec::new(),
                        });
                        pkg.sections.len() - 1
                    }
                });
            }
            "option" | "o" | "list" | "l" => {
                let list = cmd.starts_with('l');
                let section = current
                    .and_then(|i| pkg.sections.get_mut(i))
                    .ok_or_else(|| err(format!("'{cmd}' before the first 'config' section")))?;
                let name = words
                    .next()
                    .ok_or_else(|| err(format!("'{cmd}' without name")))?;
                check_name(&name, false).map_err(err)?;
                let value = words
                    .next()
                    .ok_or_else(|| err(format!("'{cmd} {name}' needs a value")))?;
                no_more(words, line)?;
                set_option(section, name, value, list, line);
            }
            other => return Err(err(format!("invalid command '{other}'"))),
        }
    }
    Ok(pkg)
}

fn set_option(section: &mut UciSection, name: String, value: String, list: bool, line: usize) {
    let slot = section.options.iter_mut().find(|o| o.name == name);
    match (slot, list) {
        (Some(o), false) => {
            o.value = UciValue::Str(value);
            o.line = line;
        }
        (Some(o), true) => {
            o.line = line;
            match &mut o.value {
                UciValue::List(items) => items.push(value),
                UciValue::Str(first) => {
                    o.value = UciValue::List(vec![std::mem::take(first), value]);
                }
            }
        }
        (None, list) => section.options.push(UciOption {
            name,
            value: if list {
                UciValue::List(vec![value])
            } else {
                UciValue::Str(value)
            },
            line,
        }),
    }
}

fn no_more(mut words: impl Iterator<Item = String>, line: usize) -> Result<(), ParseError> {
    match words.next() {
        None => Ok(()),
        Some(extra) => Err(ParseError {
            line,
            msg: format!("too many arguments (unexpected '{extra}'; quote values with spaces)"),
        }),
    }
}

/// Section and option names: letters, digits and `_` (package names may also use `-`).
fn check_name(name: &str, package: bool) -> Result<(), String> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || (package && c == '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid character in name '{name}' (use letters, digits, '_')"
        ))
    }
}

/// Section types: printable ASCII without spaces.
fn check_type(kind: &str) -> Result<(), String> {
    if !kind.is_empty() && kind.chars().all(|c| c.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(format!("invalid character in section type '{kind}'"))
    }
}

struct Lexer<I: Iterator<Item = char>> {
    chars: std::iter::Peekable<I>,
    line: usize,
}

impl<I: Iterator<Item = char>> Lexer<I> {
    /// The next command's words and the line it starts on; `None` at end of input.
    fn command(&mut self) -> Result<Option<(usize, Vec<String>)>, ParseError> {
        loop {
            let mut words = Vec::new();
            let mut start = None;
            loop {
                self.skip_blanks();
                match self.chars.peek() {
                    None => break,
                    Some('\n') => {
                        self.chars.next();
                        let ended = start.is_some();
                        self.line += 1;
                        if ended {
                            break;
                        }
                    }
                    Some(';') => {
                        self.chars.next();
                        if start.is_some() {
                            break;
                        }
                    }
                    Some('#') => self.skip_comment(),
                    Some(_) => {
                        let line = self.line;
                        // A bare continuation (`\` at a line end between words) is no word.
                        if let Some(w) = self.word()? {
                            start.get_or_insert(line);
                            words.push(w);
                        }
                    }
                }
            }
            match start {
                Some(line) => return Ok(Some((line, words))),
                None if self.chars.peek().is_none() => return Ok(None),
                None => {}
            }
        }
    }

    fn skip_blanks(&mut self) {
        while let Some(c) = self.chars.peek() {
            if *c == '\n' || !c.is_whitespace() {
                return;
            }
            self.chars.next();
        }
    }

    fn skip_comment(&mut self) {
        while let Some(c) = self.chars.peek() {
            if *c == '\n' {
                return;
            }
            self.chars.next();
        }
    }

    /// One word: adjacent quoted and unquoted pieces, up to whitespace, `;` or `#`.
    fn word(&mut self) -> Result<Option<String>, ParseError> {
        let mut out = String::new();
        let mut any = false;
        while let Some(&c) = self.chars.peek() {
            match c {
                '\'' | '"' => self.quoted(&mut out, c)?,
                '\\' => {
                    self.chars.next();
                    if !self.escaped(&mut out) {
                        continue;
                    }
                }
                ';' | '#' => break,
                c if c.is_whitespace() => break,
                c => {
                    self.chars.next();
                    out.push(c);
                }
            }
            any = true;
        }
        Ok(any.then_some(out))
    }

    /// After a backslash: a line end joins the next line (returns false); any other
    /// character is taken literally (returns true).
    fn escaped(&mut self, out: &mut String) -> bool {
        match self.chars.next() {
            None => false,
            Some('\n') => {
                self.line += 1;
                false
            }
            Some('\r') if self.chars.peek() == Some(&'\n') => {
                self.chars.next();
                self.line += 1;
                false
            }
            Some(c) => {
                out.push(c);
                true
            }
        }
    }

    /// A quoted piece: `'...'` takes everything literally, `"..."` honours backslashes.
    /// Both may span lines.
    fn quoted(&mut self, out: &mut String, quote: char) -> Result<(), ParseError> {
        let line = self.line;
        self.chars.next();
        loop {
            match self.chars.next() {
                None => return Err(unterminated(line, quote)),
                Some(c) if c == quote => return Ok(()),
                Some('\\') if quote == '"' => {
                    self.escaped(out);
                }
                Some(c) => {
                    if c == '\n' {
                        self.line += 1;
                    }
                    out.push(c);
                }
            }
        }
    }
}

fn unterminated(line: usize, quote: char) -> ParseError {
    ParseError {
        line,
        msg: format!("unterminated {quote} (opened on this line)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> UciSection {
        let pkg = parse(text).unwrap();
        assert_eq!(pkg.sections.len(), 1, "{pkg:?}");
        pkg.sections.into_iter().next().unwrap()
    }

    fn str_of(s: &UciSection, name: &str) -> String {
        match &s.option(name).unwrap().value {
            UciValue::Str(v) => v.clone(),
            v => panic!("{name} is {v:?}"),
        }
    }

    #[test]
    fn named_and_anonymous_sections_with_options_and_lists() {
        let pkg = parse(
            "package mailbag\n\n# comment\nconfig smtp 'main'\n\toption hostname 'mx.example.com'\n\
             \tlist listen '0.0.0.0:25'\n\tlist listen \"[::]:25\"\nconfig relay\n\toption lifetime_days 5 # trailing\n",
        )
        .unwrap();
        assert_eq!(pkg.name.as_deref(), Some("mailbag"));
        let smtp = &pkg.sections[0];
        assert_eq!(
            (smtp.kind.as_str(), smtp.name.as_deref(), smtp.line),
            ("smtp", Some("main"), 4)
        );
        assert_eq!(str_of(smtp, "hostname"), "mx.example.com");
        assert_eq!(
            smtp.option("listen").unwrap().value,
            UciValue::List(vec!["0.0.0.0:25".into(), "[::]:25".into()])
        );
        let relay = &pkg.sections[1];
        assert_eq!(relay.name, None);
        assert_eq!(str_of(relay, "lifetime_days"), "5");
        assert_eq!(relay.option("lifetime_days").unwrap().line, 9);
    }

    #[test]
    fn quoting_escapes_and_continuations() {
        let s = one(concat!(
            "config x\n",
            "option a 'it'\\''s'\n",         // uci export's quote escape
            "option b \"say \\\"hi\\\"\"\n", // backslash in double quotes
            "option c un\\ quoted\n",        // backslash-space joins words
            "option d 'two\nlines'\n",       // multi-line single quote
            "option e long\\\nvalue\n",      // continuation
            "option f 'a'\"b\"c\n",          // adjacent pieces form one word
            "option g ''\n",                 // empty value
            "option h 'x#y' # comment\n",
            "option i \\\n  'next line'\n", // continuation between words
        ));
        assert_eq!(str_of(&s, "a"), "it's");
        assert_eq!(str_of(&s, "b"), "say \"hi\"");
        assert_eq!(str_of(&s, "c"), "un quoted");
        assert_eq!(str_of(&s, "d"), "two\nlines");
        assert_eq!(str_of(&s, "e"), "longvalue");
        assert_eq!(str_of(&s, "f"), "abc");
        assert_eq!(str_of(&s, "g"), "");
        assert_eq!(str_of(&s, "h"), "x#y");
        // Lines after a multi-line value and a continuation are still counted.
        assert_eq!(s.option("h").unwrap().line, 11);
        assert_eq!(str_of(&s, "i"), "next line");
    }

    #[test]
    fn short_commands_semicolons_and_crlf() {
        let s = one("c smtp; o a 1; l b 2\r\nl b 3\r\n");
        assert_eq!(str_of(&s, "a"), "1");
        assert_eq!(
            s.option("b").unwrap().value,
            UciValue::List(vec!["2".into(), "3".into()])
        );
    }

    #[test]
    fn option_then_list_and_repeated_named_section_merge() {
        let pkg = parse("config a 'n'\noption x 1\nconfig a 'n'\nlist x 2\noption y 3\n").unwrap();
        assert_eq!(pkg.sections.len(), 1);
        let s = &pkg.sections[0];
        assert_eq!(
            s.option("x").unwrap().value,
            UciValue::List(vec!["1".into(), "2".into()])
        );
        assert_eq!(str_of(s, "y"), "3");
    }

    #[test]
    fn errors_name_their_line() {
        let cases = [
            ("config a\n\noption 'bad name' x\n", 3, "invalid character"),
            ("option x 1\n", 1, "before the first"),
            ("config a\noption x\n", 2, "needs a value"),
            ("config a\noption x 1 2\n", 2, "too many arguments"),
            ("config a\n\noption x 'open\n\n", 3, "unterminated '"),
            ("config a\noption x \"open\n", 2, "unterminated \""),
            ("config a\nfrobnicate\n", 2, "invalid command 'frobnicate'"),
            ("config\n", 1, "config without type"),
            ("package\n", 1, "package without name"),
        ];
        for (text, line, msg) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.to_string().contains(msg), "{text:?}: {e}");
        }
    }

    #[test]
    fn empty_and_comment_only_files() {
        assert_eq!(parse("").unwrap(), UciPackage::default());
        assert_eq!(
            parse("# nothing\n\n  \t\n;;\n").unwrap(),
            UciPackage::default()
        );
    }
}
