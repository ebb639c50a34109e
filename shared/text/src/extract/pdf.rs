//! PDF text layer via `pdf-extract` (on `lopdf`), defended against hostile files.
//!
//! `pdf-extract` unwraps freely and recurses without bounds, so before it runs: streams are
//! test-decompressed against the unpack limit, page `Parent` chains must end, and Form
//! XObjects (`Do`) must not refer to themselves or nest deeper than [`MAX_XOBJECT_DEPTH`];
//! then every page is extracted under `catch_unwind`, on a thread with a large stack whose
//! panics are kept out of stderr (see [`silence_reader_panics`]).
//! Residual risks, bounded by the caller's input size limit and the function's timeout:
//! bombs inside object streams (decompressed while the file is parsed) and in LZW or
//! multi-filter streams are not test-decompressed.

use std::collections::HashSet;
use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use flate2::read::{DeflateDecoder, ZlibDecoder};
use pdf_extract::{Dictionary, Document, Object, ObjectId, PlainTextOutput, Stream};

use super::{ExtractError, Limits};

const FORMAT: &str = "pdf";
/// Stack for the extraction thread: the reader recurses (nested objects up to `lopdf`'s cap
/// of 100 levels, Form XObjects up to [`MAX_XOBJECT_DEPTH`]), and the caller's thread may be
/// an async worker with a small stack. Only what is touched is committed.
const STACK_BYTES: usize = 64 * 1024 * 1024;
/// Deepest chain of Form XObjects drawing one another that is extracted.
const MAX_XOBJECT_DEPTH: usize = 32;
/// Most (XObject, resources) pairs the structure check visits.
const MAX_XOBJECT_VISITS: usize = 100_000;
/// Longest page `Parent` chain.
const MAX_PAGE_TREE_DEPTH: usize = 64;

/// The text of the document's pages. Where the reader fails on some pages, the text of the
/// others (each followed by a blank line); where it fails on all of them, `Corrupt`.
pub(super) fn extract_text(bytes: &[u8], limits: &Limits) -> Result<String, ExtractError> {
    silence_reader_panics();
    let guarded = || {
        catch_unwind(AssertUnwindSafe(|| extract_document(bytes, limits)))
            .unwrap_or_else(|_| Err(reader_failed()))
    };
    std::thread::scope(|scope| {
        match std::thread::Builder::new()
            .name(THREAD_NAME.to_owned())
            .stack_size(STACK_BYTES)
            .spawn_scoped(scope, guarded)
        {
            Ok(handle) => handle.join().unwrap_or_else(|_| Err(reader_failed())),
            // No thread to be had: run here, still under `catch_unwind`.
            Err(_) => guarded(),
        }
    })
}

/// Name of the thread the PDF reader runs on.
const THREAD_NAME: &str = "text-extract-pdf";

/// Keeps the panics caught on the PDF reader's thread out of stderr: they are expected on
/// malformed files, reported as [`ExtractError::Corrupt`], and their messages can quote
/// document bytes. Installed once, it wraps the panic hook in place then and leaves
/// panics on every other thread to it.
fn silence_reader_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() != Some(THREAD_NAME) {
                previous(info);
            }
        }));
    });
}

fn reader_failed() -> ExtractError {
    ExtractError::corrupt(FORMAT, "the PDF reader failed on malformed content")
}

fn extract_document(bytes: &[u8], limits: &Limits) -> Result<String, ExtractError> {
    let mut doc = Document::load_mem(bytes).map_err(load_error)?;
    if doc.is_encrypted() {
        // Files with an owner password only open with the empty user password.
        doc.decrypt("").map_err(|_| password_protected())?;
    }
    check_unpacked_size(&doc, limits.max_unpacked_bytes)?;
    let pages = doc.get_pages();
    check_structure(&doc, &pages)?;

    // The whole document in one pass; only where that fails, page by page to keep the pages
    // that can be read (slower: `pdf-extract` looks the page tree up again for every page).
    let whole = catch_unwind(AssertUnwindSafe(|| {
        let mut text = String::new();
        let mut output = PlainTextOutput::new(&mut text);
        pdf_extract::output_doc(&doc, &mut output).map(|()| text)
    }));
    if let Ok(Ok(text)) = whole {
        return Ok(text);
    }

    let mut text = String::new();
    let mut first_error = None;
    let mut pages_read = 0usize;
    for &page_number in pages.keys() {
        let page = catch_unwind(AssertUnwindSafe(|| {
            let mut page_text = String::new();
            let mut output = PlainTextOutput::new(&mut page_text);
            pdf_extract::output_doc_page(&doc, &mut output, page_number).map(|()| page_text)
        }));
        match page {
            Ok(Ok(page_text)) => {
                pages_read += 1;
                text.push_str(&page_text);
                text.push_str("\n\n");
            }
            Ok(Err(error)) => {
                first_error.get_or_insert_with(|| ExtractError::corrupt(FORMAT, error));
            }
            Err(_) => {
                first_error.get_or_insert_with(reader_failed);
            }
        }
    }
    match first_error {
        Some(error) if pages_read == 0 => Err(error),
        _ => Ok(text),
    }
}

fn load_error(error: pdf_extract::Error) -> ExtractError {
    match error {
        pdf_extract::Error::Decryption(_) | pdf_extract::Error::InvalidPassword => {
            password_protected()
        }
        other => ExtractError::corrupt(FORMAT, other),
    }
}

fn password_protected() -> ExtractError {
    ExtractError::Unsupported {
        format: "encrypted (password-protected) PDF".to_owned(),
    }
}

/// Test-decompresses every Flate stream, discarding the output: images one by one against
/// `limit`, everything else together against `limit`.
fn check_unpacked_size(doc: &Document, limit: u64) -> Result<(), ExtractError> {
    let mut total = 0u64;
    for object in doc.objects.values() {
        let Object::Stream(stream) = object else {
            continue;
        };
        let Ok(filters) = stream.filters() else {
            continue;
        };
        if filters.first().copied() != Some(b"FlateDecode".as_slice()) {
            continue;
        }
        let is_image =
            matches!(stream.dict.get(b"Subtype"), Ok(Object::Name(name)) if name == b"Image");
        let budget = if is_image {
            limit
        } else {
            limit.saturating_sub(total)
        };
        let size = inflated_size(&stream.content, budget);
        if size > budget {
            return Err(ExtractError::TooLarge {
                format: FORMAT,
                limit_bytes: limit,
            });
        }
        if !is_image {
            total += size;
        }
    }
    Ok(())
}

/// Bytes `data` inflates to, counting no further than `budget + 1`. Like `lopdf`, falls back
/// to raw deflate after the 2-byte zlib header where zlib decoding yields nothing.
fn inflated_size(data: &[u8], budget: u64) -> u64 {
    let cap = budget.saturating_add(1);
    let zlib = count(ZlibDecoder::new(data), cap);
    if zlib > 0 {
        return zlib;
    }
    match data.get(2..) {
        Some(raw) => count(DeflateDecoder::new(raw), cap),
        None => 0,
    }
}

/// Bytes read from `reader` before it ends, fails, or reaches `cap`.
fn count(reader: impl Read, cap: u64) -> u64 {
    let mut reader = reader.take(cap);
    let mut buffer = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        match reader.read(&mut buffer) {
            Ok(0) | Err(_) => return total,
            Ok(read) => total += read as u64,
        }
    }
}

/// Rules out the structures `pdf-extract` would recurse on forever: cyclic page `Parent`
/// chains and Form XObjects that draw themselves.
fn check_structure(
    doc: &Document,
    pages: &std::collections::BTreeMap<u32, ObjectId>,
) -> Result<(), ExtractError> {
    let mut walk = XObjectWalk {
        doc,
        on_path: HashSet::new(),
        done: HashSet::new(),
        visits: 0,
    };
    for &page_id in pages.values() {
        let Some(page) = doc.get_object(page_id).ok().and_then(|o| o.as_dict().ok()) else {
            continue;
        };
        let Some(resources) = inherited_resources(doc, page)? else {
            continue;
        };
        let Some(xobjects) = get_dict(doc, resources, b"XObject") else {
            continue;
        };
        for (_, xobject) in xobjects.iter() {
            if let Some(stream) = deref(doc, xobject).and_then(|o| o.as_stream().ok()) {
                walk.visit(stream, resources, 1)?;
            }
        }
    }
    Ok(())
}

/// The page's `Resources`, looked up through its `Parent` chain the way `pdf-extract` does,
/// refusing a chain that loops or runs deeper than [`MAX_PAGE_TREE_DEPTH`].
fn inherited_resources<'a>(
    doc: &'a Document,
    page: &'a Dictionary,
) -> Result<Option<&'a Dictionary>, ExtractError> {
    let mut node = page;
    for _ in 0..MAX_PAGE_TREE_DEPTH {
        if let Some(resources) = get_dict(doc, node, b"Resources") {
            return Ok(Some(resources));
        }
        match get_dict(doc, node, b"Parent") {
            Some(parent) => node = parent,
            None => return Ok(None),
        }
    }
    Err(ExtractError::corrupt(
        FORMAT,
        "the page tree loops or is nested too deeply",
    ))
}

struct XObjectWalk<'a> {
    doc: &'a Document,
    /// (XObject, resources) pairs on the current path.
    on_path: HashSet<(usize, usize)>,
    /// Pairs already checked.
    done: HashSet<(usize, usize)>,
    visits: usize,
}

impl<'a> XObjectWalk<'a> {
    /// Follows the `Do` operators of `stream`, drawn with `resources` in effect.
    fn visit(
        &mut self,
        stream: &'a Stream,
        resources: &'a Dictionary,
        depth: usize,
    ) -> Result<(), ExtractError> {
        // Like `pdf-extract`: an XObject's own resources, else those it is drawn with.
        let resources = get_dict(self.doc, &stream.dict, b"Resources").unwrap_or(resources);
        let key = (
            std::ptr::from_ref(stream) as usize,
            std::ptr::from_ref(resources) as usize,
        );
        if self.done.contains(&key) {
            return Ok(());
        }
        if self.on_path.contains(&key) {
            return Err(ExtractError::corrupt(FORMAT, "a form XObject draws itself"));
        }
        self.visits += 1;
        if depth > MAX_XOBJECT_DEPTH || self.visits > MAX_XOBJECT_VISITS {
            return Err(ExtractError::corrupt(
                FORMAT,
                "form XObjects are nested too deeply",
            ));
        }
        let names = drawn_xobjects(stream);
        if !names.is_empty() {
            self.on_path.insert(key);
            if let Some(xobjects) = get_dict(self.doc, resources, b"XObject") {
                for name in &names {
                    let child = xobjects
                        .get(name)
                        .ok()
                        .and_then(|o| deref(self.doc, o))
                        .and_then(|o| o.as_stream().ok());
                    if let Some(child) = child {
                        self.visit(child, resources, depth + 1)?;
                    }
                }
            }
            self.on_path.remove(&key);
        }
        self.done.insert(key);
        Ok(())
    }
}

/// Names of the XObjects a content stream draws (`/Name Do`).
fn drawn_xobjects(stream: &Stream) -> Vec<Vec<u8>> {
    let content = if stream.filters().is_ok() {
        stream
            .decompressed_content()
            .unwrap_or_else(|_| stream.content.clone())
    } else {
        stream.content.clone()
    };
    if !content.windows(2).any(|w| w == b"Do") {
        return Vec::new();
    }
    let Ok(content) = pdf_extract::content::Content::decode(&content) else {
        return Vec::new();
    };
    content
        .operations
        .into_iter()
        .filter(|op| op.operator == "Do")
        .filter_map(|op| match op.operands.into_iter().next() {
            Some(Object::Name(name)) => Some(name),
            _ => None,
        })
        .collect()
}

/// One level of reference resolution, as `pdf-extract` does it.
fn deref<'a>(doc: &'a Document, object: &'a Object) -> Option<&'a Object> {
    match object {
        Object::Reference(id) => doc.get_object(*id).ok(),
        other => Some(other),
    }
}

fn get_dict<'a>(doc: &'a Document, dict: &'a Dictionary, key: &[u8]) -> Option<&'a Dictionary> {
    dict.get(key)
        .ok()
        .and_then(|o| deref(doc, o))
        .and_then(|o| o.as_dict().ok())
}
