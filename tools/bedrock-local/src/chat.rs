//! Parsing Llama 3 format prompts into chat turns, so they can be re-rendered with another
//! model's chat template.
//!
//! The format: `<|begin_of_text|>` then turns of
//! `<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>`, possibly ending in an open
//! turn (usually `assistant`) whose text so far is a prefill.

const BEGIN_OF_TEXT: &str = "<|begin_of_text|>";
const START_HEADER: &str = "<|start_header_id|>";
const END_HEADER: &str = "<|end_header_id|>";
const END_OF_TEXT: &str = "<|end_of_text|>";
/// Tokens that close a turn (`<|eom_id|>` is Llama 3.1's end of a tool-calling message).
const TURN_ENDS: [&str; 2] = ["<|eot_id|>", "<|eom_id|>"];
const MAX_ROLE_LEN: usize = 64;

/// One closed turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    /// The role from the header, e.g. `system`, `user`, `assistant`.
    pub role: String,
    /// The text of the turn, trimmed.
    pub content: String,
}

/// A parsed Llama 3 prompt.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chat {
    /// The closed turns, in order.
    pub turns: Vec<Turn>,
    /// A trailing turn without its end token: the role and the text so far (the prefill).
    pub open: Option<Turn>,
}

impl Chat {
    /// The text of the last `user` turn, if any.
    pub fn last_user_message(&self) -> Option<&str> {
        self.turns
            .iter()
            .chain(self.open.as_ref())
            .rev()
            .find(|t| t.role == "user")
            .map(|t| t.content.as_str())
    }
}

/// Whether `prompt` uses Llama 3 chat headers at all.
pub fn is_llama3(prompt: &str) -> bool {
    prompt.contains(START_HEADER)
}

/// Parses a Llama 3 prompt. Returns `None` when the prompt has no Llama 3 headers or is not
/// well formed (text outside turns, a broken header); such prompts are used as they are.
pub fn parse(prompt: &str) -> Option<Chat> {
    if !is_llama3(prompt) {
        return None;
    }
    let mut rest = prompt.trim_start();
    rest = rest.strip_prefix(BEGIN_OF_TEXT).unwrap_or(rest);
    let mut chat = Chat::default();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() || rest == END_OF_TEXT {
            return Some(chat);
        }
        rest = rest.strip_prefix(START_HEADER)?;
        let (role, after_header) = rest.split_once(END_HEADER)?;
        let role = role.trim();
        if role.is_empty() || role.len() > MAX_ROLE_LEN || role.contains("<|") {
            return None;
        }
        let body = after_header
            .strip_prefix("\n\n")
            .unwrap_or_else(|| after_header.trim_start_matches(['\n', '\r']));
        match find_turn_end(body) {
            Some((content, after_turn)) => {
                if content.contains(START_HEADER) || content.contains(END_HEADER) {
                    return None;
                }
                chat.turns.push(Turn {
                    role: role.to_owned(),
                    content: content.trim().to_owned(),
                });
                rest = after_turn;
            }
            None => {
                let prefill = body.strip_suffix(END_OF_TEXT).unwrap_or(body);
                if prefill.contains(START_HEADER) || prefill.contains(END_HEADER) {
                    return None;
                }
                chat.open = Some(Turn {
                    role: role.to_owned(),
                    content: prefill.to_owned(),
                });
                return Some(chat);
            }
        }
    }
}

/// Splits `body` at the first turn-end token: (content, text after the token). One pass, so
/// prompts with many turns stay linear.
fn find_turn_end(body: &str) -> Option<(&str, &str)> {
    body.match_indices("<|eo").find_map(|(at, _)| {
        let tail = &body[at..];
        TURN_ENDS
            .iter()
            .find(|end| tail.starts_with(*end))
            .map(|end| (&body[..at], &tail[end.len()..]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(role: &str, content: &str) -> Turn {
        Turn {
            role: role.into(),
            content: content.into(),
        }
    }

    #[test]
    fn full_conversation_with_open_assistant() {
        let prompt = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>\
            <|start_header_id|>user<|end_header_id|>\n\nHello there\n<|eot_id|>\
            <|start_header_id|>assistant<|end_header_id|>\n\n";
        let chat = parse(prompt).unwrap();
        assert_eq!(
            chat.turns,
            vec![turn("system", "Be brief."), turn("user", "Hello there")]
        );
        assert_eq!(chat.open, Some(turn("assistant", "")));
        assert_eq!(chat.last_user_message(), Some("Hello there"));
    }

    #[test]
    fn prefill_is_kept_verbatim() {
        let prompt = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nList<|eot_id|>\
            <|start_header_id|>assistant<|end_header_id|>\n\n{\"items\": [";
        let chat = parse(prompt).unwrap();
        assert_eq!(chat.open, Some(turn("assistant", "{\"items\": [")));
    }

    #[test]
    fn closed_conversation_without_begin_token() {
        let chat = parse("<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>").unwrap();
        assert_eq!(chat.turns, vec![turn("user", "hi")]);
        assert_eq!(chat.open, None);
    }

    #[test]
    fn eom_and_end_of_text_are_understood() {
        let prompt = "<|start_header_id|>ipython<|end_header_id|>\n\n{}<|eom_id|>\
            <|start_header_id|>user<|end_header_id|>\n\nok<|eot_id|><|end_of_text|>";
        let chat = parse(prompt).unwrap();
        assert_eq!(chat.turns, vec![turn("ipython", "{}"), turn("user", "ok")]);
    }

    #[test]
    fn raw_prompts_are_not_chats() {
        assert_eq!(parse("Tell me a joke"), None);
        assert_eq!(parse(""), None);
        assert!(!is_llama3("<|begin_of_text|>plain"));
    }

    #[test]
    fn hostile_inputs_fall_back_to_raw() {
        let cases = [
            // text before the first header
            "junk<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>",
            // header never closed
            "<|start_header_id|>user",
            "<|start_header_id|>",
            // empty or oversized role
            "<|start_header_id|><|end_header_id|>\n\nhi<|eot_id|>",
            &format!("<|start_header_id|>{}<|end_header_id|>x", "r".repeat(65)),
            // nested headers
            "<|start_header_id|>a<|start_header_id|>b<|end_header_id|>c",
            "<|start_header_id|>user<|end_header_id|>\n\nhi<|start_header_id|>x<|eot_id|>",
            "<|start_header_id|>user<|end_header_id|>hi<|end_header_id|>",
            // text between turns
            "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>stray",
        ];
        for case in cases {
            assert_eq!(parse(case), None, "{case:?}");
        }
    }

    #[test]
    fn odd_but_valid_inputs() {
        // Missing blank line after the header, unicode, CRLF, whitespace between turns.
        let prompt = "  <|begin_of_text|>\n<|start_header_id|> user <|end_header_id|>\r\nπ ≈ 3.14 🎉<|eot_id|>\n\n\
            <|start_header_id|>assistant<|end_header_id|>";
        let chat = parse(prompt).unwrap();
        assert_eq!(chat.turns, vec![turn("user", "π ≈ 3.14 🎉")]);
        assert_eq!(chat.open, Some(turn("assistant", "")));
        // An open user turn.
        let chat = parse("<|start_header_id|>user<|end_header_id|>\n\nunfinished").unwrap();
        assert_eq!(chat.open, Some(turn("user", "unfinished")));
        assert_eq!(chat.last_user_message(), Some("unfinished"));
        // Only the begin token and whitespace.
        assert_eq!(
            parse("<|begin_of_text|> <|start_header_id|>a<|end_header_id|><|eot_id|>")
                .unwrap()
                .turns,
            vec![turn("a", "")]
        );
        // NUL bytes and control characters are plain content.
        let chat =
            parse("<|start_header_id|>user<|end_header_id|>\n\na\0b\u{7}<|eot_id|>").unwrap();
        assert_eq!(chat.turns[0].content, "a\0b\u{7}");
    }

    #[test]
    fn many_turns_do_not_blow_up() {
        let prompt = "<|start_header_id|>user<|end_header_id|>\n\nx<|eot_id|>".repeat(10_000);
        assert_eq!(parse(&prompt).unwrap().turns.len(), 10_000);
    }
}
