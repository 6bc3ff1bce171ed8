//! Patterns as in Cedar's `like`: `*` matches any run of characters, `\*` a literal star.

/// A delegation pattern (`del.actions`, `del.resources`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern(Vec<Token>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    Char(char),
    Star,
}

impl Pattern {
    /// Reads a pattern. A backslash escapes the next character (`\*` is a literal star).
    pub fn parse(text: &str) -> Self {
        let mut tokens = Vec::with_capacity(text.len());
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            match c {
                '*' => tokens.push(Token::Star),
                '\\' => tokens.push(Token::Char(chars.next().unwrap_or('\\'))),
                c => tokens.push(Token::Char(c)),
            }
        }
        Pattern(tokens)
    }

    /// Whether `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        let literal: Vec<Token> = text.chars().map(Token::Char).collect();
        covers(&self.0, &literal)
    }

    /// Whether every string `other` matches is matched by `self` (sound, not complete: a
    /// star in `other` is covered only by a star in `self`).
    pub fn contains(&self, other: &Pattern) -> bool {
        covers(&self.0, &other.0)
    }
}

/// Glob matching where a `Star` in `text` can only be consumed by a `Star` in `pattern`.
fn covers(pattern: &[Token], text: &[Token]) -> bool {
    // reach[j]: pattern prefix so far can consume text[..j].
    let mut reach = vec![false; text.len() + 1];
    reach[0] = true;
    for token in pattern {
        match token {
            Token::Star => {
                for j in 1..=text.len() {
                    reach[j] = reach[j] || reach[j - 1];
                }
            }
            Token::Char(c) => {
                for j in (1..=text.len()).rev() {
                    reach[j] = reach[j - 1] && text[j - 1] == Token::Char(*c);
                }
                reach[0] = false;
            }
        }
    }
    reach[text.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_semantics() {
        let p = Pattern::parse("repo.*");
        assert!(p.matches("repo.test"));
        assert!(p.matches("repo."));
        assert!(!p.matches("repo"));
        assert!(!p.matches("xrepo.test"));
        assert!(Pattern::parse("*").matches(""));
        assert!(Pattern::parse("a*b*c").matches("aXXbYYc"));
        assert!(!Pattern::parse("a*b*c").matches("aXXcYYb"));
        assert!(Pattern::parse(r"a\*").matches("a*"));
        assert!(!Pattern::parse(r"a\*").matches("ab"));
        assert!(Pattern::parse("repo.test").matches("repo.test"));
        assert!(!Pattern::parse("repo.test").matches("repo.tests"));
    }

    #[test]
    fn containment_is_sound() {
        let parent = Pattern::parse("git:org/*");
        assert!(parent.contains(&Pattern::parse("git:org/repo")));
        assert!(parent.contains(&Pattern::parse("git:org/repo*")));
        assert!(!parent.contains(&Pattern::parse("git:*")));
        assert!(!Pattern::parse("repo.test").contains(&Pattern::parse("repo.*")));
        assert!(Pattern::parse("*").contains(&Pattern::parse("*")));
        assert!(!Pattern::parse(r"a\*").contains(&Pattern::parse("a*")));
    }
}
