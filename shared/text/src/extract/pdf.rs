//! PDF text layer via `pdf-extract` (on `lopdf`), defended against hostile files.
//!
//! `pdf-extract` unwraps freely, recurses without bounds and decompresses whatever it touches
//! (an image drawn with `Do` is even decompressed and parsed as a content stream), so before
//! it runs:
//! - every stream it may read is decoded once, in place, and the sum of all decoded bytes,
//!   object streams included, is held to [`Limits::max_unpacked_bytes`] (see
//!   [`super::streams`]); streams text never comes from (images, embedded files, metadata,
//!   sampled functions, shadings) are emptied without being decompressed;
//! - page `Parent` chains must end, and Form XObjects (`Do`) must not refer to themselves,
//!   nest deeper than [`MAX_XOBJECT_DEPTH`] or be drawn more than [`MAX_STREAMS_RUN`] times
//!   in all.
//!
//! Then the pages are extracted under `catch_unwind` (on the thread the caller's time box
//! runs it on, whose panics are kept out of stderr: see [`silence_reader_panics`]), checking
//! the deadline between objects, pages and characters.
//! Object streams are decoded in `lopdf`'s load filter, which reaches the budget through a
//! thread-local: `lopdf` must load on the calling thread (its `rayon` feature off, as
//! `pdf-extract` builds it; the test `object_streams_count_against_the_unpack_limit` fails
//! otherwise). Residual risk, bounded by the time box and the caller's input size limit:
//! object streams of encrypted files are decompressed by `lopdf` while decrypting, without
//! the budget.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use pdf_extract::{
    ColorSpace, Dictionary, Document, LoadOptions, MediaBox, Object, ObjectId, OutputDev,
    OutputError, Path, PlainTextOutput, Stream, Transform,
};

use super::streams::{self, Budget};
use super::worker::{Deadline, thread_name};
use super::{ExtractError, Format, Limits};

const FORMAT: &str = "pdf";
/// Deepest chain of Form XObjects drawing one another that is extracted.
const MAX_XOBJECT_DEPTH: usize = 32;
/// Most (XObject, resources) pairs the structure check visits.
const MAX_XOBJECT_VISITS: usize = 100_000;
/// Longest page `Parent` chain.
const MAX_PAGE_TREE_DEPTH: usize = 64;
/// Most content streams the reader may run over the whole document, counting a Form XObject
/// once for every time it is drawn (forms that draw forms ten times each, ten levels deep,
/// would keep it busy for hours without producing a character).
const MAX_STREAMS_RUN: u64 = 1_000_000;

/// The text of the document's pages. Where the reader fails on some pages, the text of the
/// others (each followed by a blank line); where it fails on all of them, `Corrupt`.
pub(super) fn extract_text(
    bytes: &[u8],
    limits: &Limits,
    deadline: &Deadline,
) -> Result<String, ExtractError> {
    silence_reader_panics();
    catch_unwind(AssertUnwindSafe(|| {
        extract_document(bytes, limits, deadline)
    }))
    .unwrap_or_else(|_| Err(reader_failed()))
}

/// Keeps the panics caught on the PDF reader's thread out of stderr: they are expected on
/// malformed files, reported as [`ExtractError::Corrupt`], and their messages can quote
/// document bytes. Installed once, it wraps the panic hook in place then and leaves
/// panics on every other thread to it.
fn silence_reader_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let reader = thread_name(Format::Pdf);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() != Some(reader.as_str()) {
                previous(info);
            }
        }));
    });
}

fn reader_failed() -> ExtractError {
    ExtractError::corrupt(FORMAT, "the PDF reader failed on malformed content")
}

fn extract_document(
    bytes: &[u8],
    limits: &Limits,
    deadline: &Deadline,
) -> Result<String, ExtractError> {
    let mut budget = Budget::new(limits.max_unpacked_bytes);
    let mut doc = load(bytes, &mut budget, deadline)?;
    if doc.is_encrypted() {
        // Files with an owner password only open with the empty user password.
        doc.decrypt("").map_err(|_| password_protected())?;
    }
    prepare_streams(&mut doc, &mut budget, deadline)?;
    let pages = doc.get_pages();
    check_structure(&doc, &pages, deadline)?;

    // The whole document in one pass; only where that fails, page by page to keep the pages
    // that can be read (slower: `pdf-extract` looks the page tree up again for every page).
    let whole = catch_unwind(AssertUnwindSafe(|| {
        let mut text = String::new();
        let mut output = TimeBoxed::new(&mut text, deadline);
        pdf_extract::output_doc(&doc, &mut output).map(|()| text)
    }));
    if let Ok(Ok(text)) = whole {
        return Ok(text);
    }
    deadline.check()?;

    let mut text = String::new();
    let mut first_error = None;
    let mut pages_read = 0usize;
    for &page_number in pages.keys() {
        deadline.check()?;
        let page = catch_unwind(AssertUnwindSafe(|| {
            let mut page_text = String::new();
            let mut output = TimeBoxed::new(&mut page_text, deadline);
            pdf_extract::output_doc_page(&doc, &mut output, page_number).map(|()| page_text)
        }));
        match page {
            Ok(Ok(page_text)) => {
                pages_read += 1;
                text.push_str(&page_text);
                text.push_str("\n\n");
            }
            Ok(Err(error)) => {
                deadline.check()?;
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

/// The document's objects, with its object streams decoded against `budget` while they are
/// read (through `lopdf`'s load filter, which can only reach state through a thread-local).
fn load(bytes: &[u8], budget: &mut Budget, deadline: &Deadline) -> Result<Document, ExtractError> {
    LOADING.set(Some(Loading {
        budget: *budget,
        deadline: *deadline,
        stopped: None,
    }));
    let loaded = Document::load_mem_with_options(bytes, LoadOptions::with_filter(on_load));
    if let Some(loading) = LOADING.take() {
        if let Some(error) = loading.stopped {
            return Err(error);
        }
        *budget = loading.budget;
    }
    loaded.map_err(load_error)
}

thread_local! {
    /// The budget and deadline of the document [`load`] is reading on this thread.
    static LOADING: RefCell<Option<Loading>> = const { RefCell::new(None) };
}

struct Loading {
    budget: Budget,
    deadline: Deadline,
    /// Why loading was stopped: every object after it is dropped.
    stopped: Option<ExtractError>,
}

/// `lopdf`'s load filter: decodes object streams within the budget before `lopdf` unpacks
/// them (it would inflate them without a bound). Streams are changed in place, where `lopdf`
/// keeps using them; other objects are returned, as `lopdf` takes those from the result.
fn on_load(id: ObjectId, object: &mut Object) -> Option<(ObjectId, Object)> {
    LOADING.with_borrow_mut(|loading| {
        if let Some(loading) = loading.as_mut() {
            if loading.stopped.is_some() {
                return None;
            }
            // Streams with an indirect length are filled in after loading: not yet here.
            if let Object::Stream(stream) = &mut *object
                && stream.dict.has_type(b"ObjStm")
                && !stream.content.is_empty()
            {
                let decoded = loading.deadline.check().and_then(|()| {
                    streams::decode_in_place(stream, &mut loading.budget, &loading.deadline)
                });
                if let Err(error) = decoded {
                    loading.stopped = Some(error);
                    return None;
                }
            }
        }
        Some(match object {
            Object::Stream(_) => (id, Object::Null),
            other => (id, other.clone()),
        })
    })
}

/// Decodes, once and within `budget`, every stream the text reader may read, and empties
/// those it never needs text from, without decompressing them.
fn prepare_streams(
    doc: &mut Document,
    budget: &mut Budget,
    deadline: &Deadline,
) -> Result<(), ExtractError> {
    for object in doc.objects.values_mut() {
        deadline.check()?;
        let Object::Stream(stream) = object else {
            continue;
        };
        if holds_no_text(&stream.dict) {
            stream.set_plain_content(Vec::new());
        } else {
            streams::decode_in_place(stream, budget, deadline)?;
        }
    }
    Ok(())
}

/// Streams text is never read from: images (which `pdf-extract` would otherwise decompress
/// and parse as content where they are drawn), embedded files, XMP metadata, cross-reference
/// and (already unpacked) object streams, sampled functions and shadings.
fn holds_no_text(dict: &Dictionary) -> bool {
    let name_is = |key: &[u8], names: &[&[u8]]| matches!(dict.get(key), Ok(Object::Name(name)) if names.contains(&name.as_slice()));
    name_is(b"Subtype", &[b"Image"])
        || name_is(b"Type", &[b"EmbeddedFile", b"Metadata", b"XRef", b"ObjStm"])
        || dict.has(b"FunctionType")
        || dict.has(b"ShadingType")
}

/// The plain-text output of `pdf-extract`, failing every call once the deadline has passed so
/// that the reader stops.
struct TimeBoxed<'a> {
    inner: PlainTextOutput<&'a mut String>,
    deadline: &'a Deadline,
}

impl<'a> TimeBoxed<'a> {
    fn new(text: &'a mut String, deadline: &'a Deadline) -> Self {
        TimeBoxed {
            inner: PlainTextOutput::new(text),
            deadline,
        }
    }

    fn check(&self) -> Result<(), OutputError> {
        if self.deadline.passed() {
            Err(OutputError::FormatError(std::fmt::Error))
        } else {
            Ok(())
        }
    }
}

impl OutputDev for TimeBoxed<'_> {
    fn begin_page(
        &mut self,
        page_num: u32,
        media_box: &MediaBox,
        art_box: Option<(f64, f64, f64, f64)>,
    ) -> Result<(), OutputError> {
        self.check()?;
        self.inner.begin_page(page_num, media_box, art_box)
    }

    fn end_page(&mut self) -> Result<(), OutputError> {
        self.check()?;
        self.inner.end_page()
    }

    fn output_character(
        &mut self,
        trm: &Transform,
        width: f64,
        spacing: f64,
        font_size: f64,
        char: &str,
    ) -> Result<(), OutputError> {
        self.check()?;
        self.inner
            .output_character(trm, width, spacing, font_size, char)
    }

    fn begin_word(&mut self) -> Result<(), OutputError> {
        self.check()?;
        self.inner.begin_word()
    }

    fn end_word(&mut self) -> Result<(), OutputError> {
        self.check()?;
        self.inner.end_word()
    }

    fn end_line(&mut self) -> Result<(), OutputError> {
        self.check()?;
        self.inner.end_line()
    }

    fn stroke(
        &mut self,
        ctm: &Transform,
        colorspace: &ColorSpace,
        color: &[f64],
        path: &Path,
    ) -> Result<(), OutputError> {
        self.check()?;
        self.inner.stroke(ctm, colorspace, color, path)
    }

    fn fill(
        &mut self,
        ctm: &Transform,
        colorspace: &ColorSpace,
        color: &[f64],
        path: &Path,
    ) -> Result<(), OutputError> {
        self.check()?;
        self.inner.fill(ctm, colorspace, color, path)
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

/// Rules out the structures `pdf-extract` would recurse on forever: cyclic page `Parent`
/// chains and Form XObjects that draw themselves; and those it would run for hours: Form
/// XObjects drawn, all told, more than [`MAX_STREAMS_RUN`] times.
fn check_structure(
    doc: &Document,
    pages: &std::collections::BTreeMap<u32, ObjectId>,
    deadline: &Deadline,
) -> Result<(), ExtractError> {
    let mut walk = XObjectWalk {
        doc,
        deadline,
        on_path: HashSet::new(),
        done: HashMap::new(),
        visits: 0,
    };
    let mut streams_run = 0u64;
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
        // What the page itself draws, each form with all it draws in turn.
        let content = doc.get_page_content(page_id).unwrap_or_default();
        for name in drawn_xobjects(&content) {
            let drawn = xobjects
                .get(&name)
                .ok()
                .and_then(|o| deref(doc, o))
                .and_then(|o| o.as_stream().ok());
            if let Some(stream) = drawn {
                streams_run = streams_run.saturating_add(walk.visit(stream, resources, 1)?);
                if streams_run > MAX_STREAMS_RUN {
                    return Err(ExtractError::corrupt(
                        FORMAT,
                        "form XObjects are drawn too many times",
                    ));
                }
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
    deadline: &'a Deadline,
    /// (XObject, resources) pairs on the current path.
    on_path: HashSet<(usize, usize)>,
    /// Pairs already checked, with the number of content streams drawing them once runs.
    done: HashMap<(usize, usize), u64>,
    visits: usize,
}

impl<'a> XObjectWalk<'a> {
    /// Follows the `Do` operators of `stream`, drawn with `resources` in effect; the number of
    /// content streams drawing it once runs (itself and all it draws, as often as it does).
    fn visit(
        &mut self,
        stream: &'a Stream,
        resources: &'a Dictionary,
        depth: usize,
    ) -> Result<u64, ExtractError> {
        // Like `pdf-extract`: an XObject's own resources, else those it is drawn with.
        let resources = get_dict(self.doc, &stream.dict, b"Resources").unwrap_or(resources);
        let key = (
            std::ptr::from_ref(stream) as usize,
            std::ptr::from_ref(resources) as usize,
        );
        if let Some(&streams_run) = self.done.get(&key) {
            return Ok(streams_run);
        }
        if self.on_path.contains(&key) {
            return Err(ExtractError::corrupt(FORMAT, "a form XObject draws itself"));
        }
        self.deadline.check()?;
        self.visits += 1;
        if depth > MAX_XOBJECT_DEPTH || self.visits > MAX_XOBJECT_VISITS {
            return Err(ExtractError::corrupt(
                FORMAT,
                "form XObjects are nested too deeply",
            ));
        }
        let mut streams_run = 1u64;
        let names = drawn_xobjects(&stream.content);
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
                        let drawn = self.visit(child, resources, depth + 1)?;
                        streams_run = streams_run.saturating_add(drawn);
                    }
                }
            }
            self.on_path.remove(&key);
        }
        self.done.insert(key, streams_run);
        Ok(streams_run)
    }
}

/// Names of the XObjects a content stream draws (`/Name Do`).
/// `content` is decoded already (see [`prepare_streams`]), as the text reader will read it.
fn drawn_xobjects(content: &[u8]) -> Vec<Vec<u8>> {
    if !content.windows(2).any(|w| w == b"Do") {
        return Vec::new();
    }
    let Ok(content) = pdf_extract::content::Content::decode(content) else {
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
