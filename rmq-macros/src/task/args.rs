//! Parsing of the `#[rmq::task(...)]` arguments.
//!
//! Each key is parsed by `syn::meta::parser`. A key given twice is an error
//! at its second occurrence, an unknown key lists the valid ones, and a bad
//! value is an error on the value's tokens. Value errors do not stop the
//! parse: every mistake in the attribute is reported at once.

use proc_macro2::{Span, TokenStream};
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Ident, Lit, LitStr};

use super::duration;
use super::errors::Errors;

/// Every key the attribute accepts, in the order the docs list them.
const KEYS: &[&str] = &[
    "topic",
    "retries",
    "retry_delays",
    "backoff",
    "priority",
    "timeout",
    "ttl",
    "payload",
    "index",
    "unique",
    "rate",
    "concurrency",
    "rate_key",
    "cron",
    "tz",
    "overlap",
    "catch_up",
    "cron_payload",
    "keep_result",
    "on",
];

/// The keys of `unique(...)`.
const UNIQUE_KEYS: &[&str] = &["key", "mode", "ttl"];

/// The unique modes, as written in `unique(mode = ...)`.
const UNIQUE_MODES: &[&str] = &["until_started", "until_completed", "window", "debounce"];

/// The variants of `rmq::Priority`.
const PRIORITIES: &[&str] = &["High", "Normal", "Low"];

/// The parsed attribute. `None` means "not given": the runtime default.
#[derive(Default)]
pub(crate) struct TaskArgs {
    /// `topic = "..."`, already checked.
    pub(crate) topic: Option<LitStr>,
    /// `retries = N`.
    pub(crate) retries: Option<u8>,
    /// `retry_delays = [...]` or `backoff = exponential(...)`.
    pub(crate) backoff: Option<BackoffArg>,
    /// `priority = High`, a valid variant name.
    pub(crate) priority: Option<Ident>,
    /// `timeout = "30s"`, in milliseconds.
    pub(crate) timeout: Option<u64>,
    /// `ttl = "1h"`, in milliseconds.
    pub(crate) ttl: Option<u64>,
    /// `payload = Name`: the payload struct's name.
    pub(crate) payload: Option<Ident>,
    /// `rate = "100/s"`: jobs per period (ms).
    pub(crate) rate: Option<(u32, u64)>,
    /// `concurrency = 10`.
    pub(crate) concurrency: Option<u32>,
    /// `rate_key = "customer_id"`, checked against the payload fields later.
    pub(crate) rate_key: Option<LitStr>,
    /// `index = true`: index generated ids too (status, cancel by id).
    pub(crate) index: Option<bool>,
    /// `unique = "30m"` or `unique(key = [..], mode = .., ttl = "..")`.
    pub(crate) unique: Option<UniqueArg>,
    /// `cron = "0 */5 * * * *"`, already checked.
    pub(crate) cron: Option<LitStr>,
    /// `tz = "Europe/Berlin"`, a known IANA time zone.
    pub(crate) tz: Option<LitStr>,
    /// `overlap = Skip | Allow`.
    pub(crate) overlap: Option<Ident>,
    /// `catch_up = None | One | All("6h")`.
    pub(crate) catch_up: Option<CatchUpArg>,
    /// `cron_payload = r#"{...}"#`: the literal and the keys of its object.
    pub(crate) cron_payload: Option<(LitStr, Vec<String>)>,
    /// `keep_result = "1h"`: how long a completed job's result is kept (ms).
    pub(crate) keep_result: Option<u64>,
    /// `on = OrderCreated`: the event type (or `rmq::BatchOutcome`) the task
    /// subscribes to, which is its payload.
    pub(crate) on: Option<syn::Path>,
    /// The keys that only apply with `cron`, as written, for the error
    /// when `cron` is missing.
    pub(crate) cron_only: Vec<syn::Path>,
}

/// The parsed `unique` key.
pub(crate) struct UniqueArg {
    /// A variant name of `rmq::UniqueMode`.
    pub(crate) mode: Ident,
    /// The lock's time to live in milliseconds; `None`: the default.
    pub(crate) ttl: Option<u64>,
    /// The payload fields of the key, as written (checked against the
    /// function's parameters later); `None`: the whole payload.
    pub(crate) fields: Option<Vec<Ident>>,
}

/// `catch_up = ...`.
pub(crate) enum CatchUpArg {
    /// `None`.
    None,
    /// `One`.
    One,
    /// `All("6h")`: every missed occurrence within the bound (ms).
    All(u64),
}

/// The retry delays of a task, in milliseconds.
pub(crate) enum BackoffArg {
    /// `retry_delays = ["10s", "1m"]`.
    Fixed(Vec<u64>),
    /// `backoff = exponential(base = "1s", max = "10m")`.
    Exponential {
        /// The first delay.
        base: u64,
        /// The cap.
        max: u64,
    },
}

/// Parses the attribute's tokens, recording every problem in `errors`.
pub(crate) fn parse(args: TokenStream, errors: &mut Errors) -> TaskArgs {
    let mut parsed = TaskArgs::default();
    let mut seen = Seen::default();
    let parser = syn::meta::parser(|meta| parsed.parse_key(meta, &mut seen, errors));
    if let Err(error) = parser.parse2(args) {
        errors.push(error);
    }
    parsed
}

/// The keys met so far, to reject repeats.
#[derive(Default)]
struct Seen(Vec<String>);

impl TaskArgs {
    fn parse_key(
        &mut self,
        meta: ParseNestedMeta<'_>,
        seen: &mut Seen,
        errors: &mut Errors,
    ) -> syn::Result<()> {
        let key = match meta.path.get_ident() {
            Some(ident) => ident.to_string(),
            None => {
                skip_value(&meta)?;
                errors.push(unknown_key(&meta));
                return Ok(());
            }
        };
        if !KEYS.contains(&key.as_str()) {
            skip_value(&meta)?;
            errors.push(unknown_key(&meta));
            return Ok(());
        }

        if key == "unique" && meta.input.peek(syn::token::Paren) {
            if seen.0.contains(&key) {
                skip_value(&meta)?;
                errors.push(syn::Error::new_spanned(
                    &meta.path,
                    format_args!("`{key}` is given twice"),
                ));
                return Ok(());
            }
            seen.0.push(key);
            let span = meta.path.span();
            let mut unique = UniqueParts::default();
            meta.parse_nested_meta(|inner| unique.parse_key(inner, errors))?;
            if let Some(arg) = errors.ok(unique.finish(span)) {
                self.unique = Some(arg);
            }
            return Ok(());
        }

        let value: Expr = meta.value()?.parse()?;

        if seen.0.contains(&key) {
            errors.push(syn::Error::new_spanned(
                &meta.path,
                format_args!("`{key}` is given twice"),
            ));
            return Ok(());
        }
        let exclusive = match key.as_str() {
            "retry_delays" => Some("backoff"),
            "backoff" => Some("retry_delays"),
            _ => None,
        };
        if let Some(other) = exclusive {
            if seen.0.iter().any(|k| k == other) {
                errors.push(syn::Error::new_spanned(
                    &meta.path,
                    format_args!(
                        "`{key}` cannot be combined with `{other}`: give either a list of \
                         `retry_delays` or a `backoff`, not both"
                    ),
                ));
                return Ok(());
            }
        }
        seen.0.push(key.clone());

        let result = match key.as_str() {
            "topic" => topic(&value).map(|v| self.topic = Some(v)),
            "retries" => retries(&value).map(|v| self.retries = Some(v)),
            "retry_delays" => retry_delays(&value).map(|v| self.backoff = Some(v)),
            "backoff" => backoff(&value).map(|v| self.backoff = Some(v)),
            "priority" => priority(&value).map(|v| self.priority = Some(v)),
            "timeout" => positive_duration(&value, "timeout").map(|v| self.timeout = Some(v)),
            "ttl" => positive_duration(&value, "ttl").map(|v| self.ttl = Some(v)),
            "payload" => payload(&value).map(|v| self.payload = Some(v)),
            "index" => boolean(&value, "index").map(|v| self.index = Some(v)),
            "unique" => positive_duration(&value, "unique").map(|ttl| {
                self.unique = Some(UniqueArg {
                    mode: Ident::new("UntilCompleted", value.span()),
                    ttl: Some(ttl),
                    fields: None,
                })
            }),
            "rate" => rate(&value).map(|v| self.rate = Some(v)),
            "concurrency" => concurrency(&value).map(|v| self.concurrency = Some(v)),
            "rate_key" => string_literal(&value, "rate_key", "rate_key = \"customer_id\"")
                .map(|v| self.rate_key = Some(v.clone())),
            "cron" => cron(&value).map(|v| self.cron = Some(v)),
            "tz" => tz(&value).map(|v| self.tz = Some(v)),
            "overlap" => overlap(&value).map(|v| self.overlap = Some(v)),
            "catch_up" => catch_up(&value).map(|v| self.catch_up = Some(v)),
            "cron_payload" => cron_payload(&value).map(|v| self.cron_payload = Some(v)),
            "keep_result" => {
                positive_duration(&value, "keep_result").map(|v| self.keep_result = Some(v))
            }
            "on" => on(&value).map(|v| self.on = Some(v)),
            _ => unreachable!("every key of KEYS has a parser"),
        };
        if matches!(key.as_str(), "tz" | "overlap" | "catch_up" | "cron_payload") {
            self.cron_only.push(meta.path.clone());
        }
        errors.ok(result);
        Ok(())
    }
}

/// The keys of `unique(...)` met so far.
#[derive(Default)]
struct UniqueParts {
    seen: Vec<String>,
    /// The mode's name as written and its variant.
    mode: Option<(Ident, &'static str)>,
    ttl: Option<u64>,
    fields: Option<Vec<Ident>>,
}

impl UniqueParts {
    fn parse_key(&mut self, meta: ParseNestedMeta<'_>, errors: &mut Errors) -> syn::Result<()> {
        let key = meta
            .path
            .get_ident()
            .map(Ident::to_string)
            .filter(|k| UNIQUE_KEYS.contains(&k.as_str()));
        let Some(key) = key else {
            skip_value(&meta)?;
            let valid = UNIQUE_KEYS
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ");
            errors.push(syn::Error::new_spanned(
                &meta.path,
                format_args!("unknown key of `unique`; expected one of: {valid}"),
            ));
            return Ok(());
        };
        let value: Expr = meta.value()?.parse()?;
        if self.seen.contains(&key) {
            errors.push(syn::Error::new_spanned(
                &meta.path,
                format_args!("`{key}` is given twice"),
            ));
            return Ok(());
        }
        self.seen.push(key.clone());
        let result = match key.as_str() {
            "key" => unique_fields(&value).map(|v| self.fields = Some(v)),
            "mode" => unique_mode(&value).map(|v| self.mode = Some(v)),
            "ttl" => positive_duration(&value, "ttl").map(|v| self.ttl = Some(v)),
            _ => unreachable!("every key of UNIQUE_KEYS has a parser"),
        };
        errors.ok(result);
        Ok(())
    }

    fn finish(self, span: Span) -> syn::Result<UniqueArg> {
        let (written, variant) = self
            .mode
            .unwrap_or_else(|| (Ident::new("until_completed", span), "UntilCompleted"));
        // A `ttl` that was given but invalid has its own error already.
        let ttl_given = self.seen.iter().any(|k| k == "ttl");
        if !ttl_given && matches!(variant, "Window" | "Debounce") {
            return Err(syn::Error::new(
                written.span(),
                format_args!(
                    "mode `{written}` needs a `ttl`: the {}, e.g. `unique(mode = {written}, ttl = \"10s\")`",
                    if variant == "Window" { "window" } else { "wait each duplicate restarts" }
                ),
            ));
        }
        Ok(UniqueArg {
            mode: Ident::new(variant, written.span()),
            ttl: self.ttl,
            fields: self.fields,
        })
    }
}

/// `key = field` or `key = [field, ...]`: payload field names.
fn unique_fields(value: &Expr) -> syn::Result<Vec<Ident>> {
    const FORM: &str =
        "key must name payload fields, e.g. `key = user_id` or `key = [user_id, kind]`";
    let value = ungroup(value);
    let elems: Vec<&Expr> = match value {
        Expr::Array(array) if array.elems.is_empty() => {
            return Err(syn::Error::new_spanned(
                array,
                "key must name at least one field; leave `key` out to use the whole payload",
            ))
        }
        Expr::Array(array) => array.elems.iter().collect(),
        other => vec![other],
    };
    let mut errors = Errors::default();
    let mut fields: Vec<Ident> = Vec::new();
    for elem in elems {
        match ungroup(elem) {
            Expr::Path(path) if path.path.get_ident().is_some() => {
                let ident = path.path.get_ident().cloned().expect("checked");
                if fields.contains(&ident) {
                    errors.push(syn::Error::new_spanned(
                        &ident,
                        format_args!("field `{ident}` is named twice"),
                    ));
                } else {
                    fields.push(ident);
                }
            }
            other => errors.push(syn::Error::new_spanned(other, FORM)),
        }
    }
    match errors.into_error() {
        Some(error) => Err(error),
        None => Ok(fields),
    }
}

/// `mode = until_started | until_completed | window | debounce`.
fn unique_mode(value: &Expr) -> syn::Result<(Ident, &'static str)> {
    let valid = UNIQUE_MODES
        .iter()
        .map(|m| format!("`{m}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let value = ungroup(value);
    let ident = match value {
        Expr::Path(path) => path.path.get_ident(),
        _ => None,
    };
    let Some(ident) = ident else {
        return Err(syn::Error::new_spanned(
            value,
            format_args!(
                "mode must be an identifier, e.g. `mode = debounce`; expected one of: {valid}"
            ),
        ));
    };
    let variant = match ident.to_string().as_str() {
        "until_started" => "UntilStarted",
        "until_completed" => "UntilCompleted",
        "window" => "Window",
        "debounce" => "Debounce",
        _ => {
            return Err(syn::Error::new(
                ident.span(),
                format_args!("unknown unique mode `{ident}`; expected one of: {valid}"),
            ))
        }
    };
    Ok((ident.clone(), variant))
}

/// Consumes the value of an unknown key (`= expr` or `(...)`), so parsing
/// can go on to the next key.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.input.parse::<proc_macro2::Group>()?;
    }
    Ok(())
}

fn unknown_key(meta: &ParseNestedMeta<'_>) -> syn::Error {
    let key = meta
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect::<Vec<_>>()
        .join("::");
    let valid = KEYS
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    syn::Error::new_spanned(
        &meta.path,
        format_args!("unknown key `{key}`; expected one of: {valid}"),
    )
}

/// `value` without the invisible groups around it. A `macro_rules!` macro
/// passes a `$value:literal` or `$value:expr` fragment on wrapped in a
/// group without delimiters, which syn parses as `Expr::Group`.
fn ungroup(mut value: &Expr) -> &Expr {
    while let Expr::Group(group) = value {
        value = &group.expr;
    }
    value
}

fn string_literal<'a>(value: &'a Expr, what: &str, example: &str) -> syn::Result<&'a LitStr> {
    match ungroup(value) {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(lit),
        other => Err(syn::Error::new_spanned(
            other,
            format_args!("{what} must be a string literal, e.g. `{example}`"),
        )),
    }
}

fn topic(value: &Expr) -> syn::Result<LitStr> {
    let lit = string_literal(value, "topic", "topic = \"orders\"")?;
    check_topic(&lit.value(), lit.span())?;
    Ok(lit.clone())
}

/// A topic is part of every Redis key of its queue, inside the hash tag
/// `{prefix:topic}`: braces and whitespace would break that layout.
pub(crate) fn check_topic(topic: &str, span: Span) -> syn::Result<()> {
    if topic.is_empty() {
        return Err(syn::Error::new(span, "topic must not be empty"));
    }
    if let Some(c) = topic
        .chars()
        .find(|c| *c == '{' || *c == '}' || c.is_whitespace())
    {
        return Err(syn::Error::new(
            span,
            format_args!(
                "topic must not contain {}: it is part of the Redis keys \
                 `{{prefix:topic}}:...`",
                match c {
                    '{' => "`{`".to_owned(),
                    '}' => "`}`".to_owned(),
                    _ => "whitespace".to_owned(),
                }
            ),
        ));
    }
    Ok(())
}

fn retries(value: &Expr) -> syn::Result<u8> {
    const MESSAGE: &str = "retries must be an integer from 0 to 255";
    match ungroup(value) {
        Expr::Lit(ExprLit {
            lit: Lit::Int(lit), ..
        }) => lit
            .base10_parse::<u8>()
            .map_err(|_| syn::Error::new(lit.span(), MESSAGE)),
        other => Err(syn::Error::new_spanned(other, MESSAGE)),
    }
}

fn boolean(value: &Expr, what: &str) -> syn::Result<bool> {
    match ungroup(value) {
        Expr::Lit(ExprLit {
            lit: Lit::Bool(lit),
            ..
        }) => Ok(lit.value),
        other => Err(syn::Error::new_spanned(
            other,
            format_args!("{what} must be `true` or `false`"),
        )),
    }
}

fn duration_literal(value: &Expr, what: &str) -> syn::Result<u64> {
    let lit = string_literal(value, what, &format!("{what} = \"30s\""))?;
    duration::parse(&lit.value()).map_err(|reason| syn::Error::new(lit.span(), reason))
}

fn positive_duration(value: &Expr, what: &str) -> syn::Result<u64> {
    let millis = duration_literal(value, what)?;
    if millis == 0 {
        return Err(syn::Error::new_spanned(
            value,
            format_args!("{what} must be greater than zero"),
        ));
    }
    Ok(millis)
}

fn retry_delays(value: &Expr) -> syn::Result<BackoffArg> {
    let value = ungroup(value);
    let Expr::Array(array) = value else {
        return Err(syn::Error::new_spanned(
            value,
            "retry_delays must be a list of durations, e.g. `retry_delays = [\"10s\", \"1m\", \"5m\"]`",
        ));
    };
    if array.elems.is_empty() {
        return Err(syn::Error::new_spanned(
            array,
            "retry_delays must not be empty: leave it out to use the worker's retry delays",
        ));
    }
    let mut errors = Errors::default();
    let delays: Vec<u64> = array
        .elems
        .iter()
        .filter_map(|elem| errors.ok(duration_literal(elem, "each retry delay")))
        .collect();
    match errors.into_error() {
        Some(error) => Err(error),
        None => Ok(BackoffArg::Fixed(delays)),
    }
}

fn backoff(value: &Expr) -> syn::Result<BackoffArg> {
    const FORM: &str = "backoff must be `exponential(base = \"1s\", max = \"10m\")`";
    let value = ungroup(value);
    let Expr::Call(call) = value else {
        return Err(syn::Error::new_spanned(value, FORM));
    };
    match ungroup(&call.func) {
        Expr::Path(path) if path.path.is_ident("exponential") => {}
        other => {
            return Err(syn::Error::new_spanned(
                other,
                format_args!("unknown backoff; expected `exponential`: {FORM}"),
            ))
        }
    }
    let mut base = None;
    let mut max = None;
    let mut errors = Errors::default();
    for arg in &call.args {
        let Expr::Assign(assign) = ungroup(arg) else {
            errors.push(syn::Error::new_spanned(arg, FORM));
            continue;
        };
        let slot = match ungroup(&assign.left) {
            Expr::Path(p) if p.path.is_ident("base") => &mut base,
            Expr::Path(p) if p.path.is_ident("max") => &mut max,
            other => {
                errors.push(syn::Error::new_spanned(
                    other,
                    "unknown backoff key; expected `base` or `max`",
                ));
                continue;
            }
        };
        if slot.is_some() {
            errors.push(syn::Error::new_spanned(&assign.left, "given twice"));
            continue;
        }
        let name = if matches!(ungroup(&assign.left), Expr::Path(p) if p.path.is_ident("base")) {
            "base"
        } else {
            "max"
        };
        if let Some(millis) = errors.ok(positive_duration(&assign.right, name)) {
            *slot = Some((millis, assign.right.span()));
        }
    }
    if let Some(error) = errors.into_error() {
        return Err(error);
    }
    match (base, max) {
        (Some((base, _)), Some((max, max_span))) => {
            if max < base {
                return Err(syn::Error::new(
                    max_span,
                    "max must not be smaller than base",
                ));
            }
            Ok(BackoffArg::Exponential { base, max })
        }
        _ => Err(syn::Error::new_spanned(
            call,
            format_args!("missing `base` or `max`: {FORM}"),
        )),
    }
}

fn priority(value: &Expr) -> syn::Result<Ident> {
    let valid = "expected one of: `High`, `Normal`, `Low`";
    let value = ungroup(value);
    let Expr::Path(path) = value else {
        return Err(syn::Error::new_spanned(
            value,
            format_args!("priority must be an identifier, e.g. `priority = High`; {valid}"),
        ));
    };
    let ident = &path
        .path
        .segments
        .last()
        .expect("a parsed path has a segment")
        .ident;
    if !PRIORITIES.contains(&ident.to_string().as_str()) {
        return Err(syn::Error::new(
            ident.span(),
            format_args!("unknown priority `{ident}`; {valid}"),
        ));
    }
    Ok(ident.clone())
}

fn payload(value: &Expr) -> syn::Result<Ident> {
    let example = "e.g. `payload = PlaceOrder`";
    match ungroup(value) {
        Expr::Path(path) => path.path.get_ident().cloned().ok_or_else(|| {
            syn::Error::new_spanned(
                path,
                format_args!("payload must be a plain type name, {example}"),
            )
        }),
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => lit.parse::<Ident>().map_err(|_| {
            syn::Error::new(
                lit.span(),
                format_args!("payload must name a type, {example}"),
            )
        }),
        other => Err(syn::Error::new_spanned(
            other,
            format_args!("payload must be a type name, {example}"),
        )),
    }
}

/// `on = OrderCreated`: a path to the event type.
fn on(value: &Expr) -> syn::Result<syn::Path> {
    match ungroup(value) {
        Expr::Path(path) if path.qself.is_none() => Ok(path.path.clone()),
        other => Err(syn::Error::new_spanned(
            other,
            "on must name an event type declared with `#[rmq::event]`, e.g. \
             `on = OrderCreated` (or `on = rmq::BatchOutcome` for a batch callback)",
        )),
    }
}

/// `rate = "100/s"`: a positive count of jobs per unit (`s`, `m` or `min`,
/// `h`, `d`) or per duration (`"5/10s"`).
fn rate(value: &Expr) -> syn::Result<(u32, u64)> {
    const FORM: &str = "expected jobs per period, e.g. `rate = \"100/s\"`, `\"10/m\"`, \
                        `\"5/10s\"` (units `s`, `m` or `min`, `h`, `d`, or a duration)";
    let lit = string_literal(value, "rate", "rate = \"100/s\"")?;
    let text = lit.value();
    let error = |message: String| syn::Error::new(lit.span(), message);
    let Some((count, per)) = text.split_once('/') else {
        return Err(error(format!("invalid rate \"{text}\": {FORM}")));
    };
    let count: u32 = count
        .trim()
        .parse()
        .map_err(|_| error(format!("invalid rate \"{text}\": {FORM}")))?;
    if count == 0 {
        return Err(error(format!(
            "rate \"{text}\" lets no job run: the count must be at least 1 \
             (leave `rate` out for no limit)"
        )));
    }
    let per = per.trim();
    let millis = match per {
        "s" | "sec" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        other => {
            duration::parse(other).map_err(|_| error(format!("invalid rate \"{text}\": {FORM}")))?
        }
    };
    if millis == 0 {
        return Err(error(format!(
            "rate \"{text}\" has an empty period: it must be at least 1ms"
        )));
    }
    Ok((count, millis))
}

fn concurrency(value: &Expr) -> syn::Result<u32> {
    const MESSAGE: &str = "concurrency must be an integer of at least 1 (jobs of the topic \
                           running at once across every worker)";
    match ungroup(value) {
        Expr::Lit(ExprLit {
            lit: Lit::Int(lit), ..
        }) => match lit.base10_parse::<u32>() {
            Ok(0) => Err(syn::Error::new(
                lit.span(),
                "concurrency must be at least 1: 0 would run no job (leave it out for no limit)",
            )),
            Ok(n) => Ok(n),
            Err(_) => Err(syn::Error::new(lit.span(), MESSAGE)),
        },
        other => Err(syn::Error::new_spanned(other, MESSAGE)),
    }
}

impl TaskArgs {
    /// The errors of keys that apply only to cron tasks, given without
    /// `cron`.
    pub(crate) fn check_cron_keys(&self, errors: &mut Errors) {
        if self.cron.is_some() {
            return;
        }
        for path in &self.cron_only {
            let key = path.get_ident().map(Ident::to_string).unwrap_or_default();
            errors.push(syn::Error::new_spanned(
                path,
                format_args!(
                    "`{key}` applies only to periodic tasks: add a schedule, e.g. \
                     `cron = \"0 */5 * * * *\"`"
                ),
            ));
        }
    }
}

fn cron(value: &Expr) -> syn::Result<LitStr> {
    let lit = string_literal(value, "cron", "cron = \"0 */5 * * * *\"")?;
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .build()
        .parse(&lit.value())
        .map_err(|e| {
            syn::Error::new(
                lit.span(),
                format_args!(
                    "invalid cron expression {:?}: {e}; expected 5 fields (minute hour \
                     day-of-month month day-of-week) or 6 (second first), e.g. \"0 */5 * * * *\"",
                    lit.value()
                ),
            )
        })?;
    Ok(lit.clone())
}

fn tz(value: &Expr) -> syn::Result<LitStr> {
    let lit = string_literal(value, "tz", "tz = \"Europe/Berlin\"")?;
    lit.value().parse::<chrono_tz::Tz>().map_err(|_| {
        syn::Error::new(
            lit.span(),
            format_args!(
                "unknown time zone {:?}: expected an IANA name such as \"Europe/Berlin\" or \"UTC\"",
                lit.value()
            ),
        )
    })?;
    Ok(lit.clone())
}

fn cron_payload(value: &Expr) -> syn::Result<(LitStr, Vec<String>)> {
    let example = r##"cron_payload = r#"{"region": "eu"}"#"##;
    let lit = string_literal(value, "cron_payload", example)?;
    let parsed: serde_json::Value = serde_json::from_str(&lit.value()).map_err(|e| {
        syn::Error::new(
            lit.span(),
            format_args!("cron_payload is not valid JSON: {e}; e.g. `{example}`"),
        )
    })?;
    match parsed {
        serde_json::Value::Object(map) => Ok((lit.clone(), map.keys().cloned().collect())),
        _ => Err(syn::Error::new(
            lit.span(),
            format_args!(
                "cron_payload must be a JSON object with the payload arguments, e.g. `{example}`"
            ),
        )),
    }
}

fn overlap(value: &Expr) -> syn::Result<Ident> {
    let valid = "expected `Skip` (the default: no run while the previous one is queued or \
                 running) or `Allow`";
    let value = ungroup(value);
    let Expr::Path(path) = value else {
        return Err(syn::Error::new_spanned(
            value,
            format_args!("overlap must be an identifier, e.g. `overlap = Allow`; {valid}"),
        ));
    };
    match path.path.get_ident() {
        Some(ident) if ident == "Skip" || ident == "Allow" => Ok(ident.clone()),
        _ => Err(syn::Error::new_spanned(
            path,
            format_args!("unknown overlap policy; {valid}"),
        )),
    }
}

fn catch_up(value: &Expr) -> syn::Result<CatchUpArg> {
    const VALID: &str = "expected `None`, `One` (the default) or `All(\"6h\")` (every missed \
                         occurrence of the last 6 hours)";
    match ungroup(value) {
        Expr::Path(path) if path.path.is_ident("None") => Ok(CatchUpArg::None),
        Expr::Path(path) if path.path.is_ident("One") => Ok(CatchUpArg::One),
        Expr::Call(call) if matches!(ungroup(&call.func), Expr::Path(p) if p.path.is_ident("All")) =>
        {
            if call.args.len() != 1 {
                return Err(syn::Error::new_spanned(
                    call,
                    "`All` takes how far back missed occurrences still run, e.g. `All(\"6h\")`",
                ));
            }
            positive_duration(&call.args[0], "the catch-up bound").map(CatchUpArg::All)
        }
        Expr::Path(path) if path.path.is_ident("All") => Err(syn::Error::new_spanned(
            path,
            "`All` takes how far back missed occurrences still run, e.g. `All(\"6h\")`",
        )),
        other => Err(syn::Error::new_spanned(
            other,
            format_args!("unknown catch-up policy; {VALID}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use proc_macro2::{Delimiter, Group, TokenStream};
    use quote::quote;

    use super::{parse, BackoffArg, Errors};

    /// `tokens` wrapped in a group without delimiters, the way a
    /// `macro_rules!` macro passes on a `$x:literal` or `$x:expr` fragment.
    fn fragment(tokens: TokenStream) -> Group {
        Group::new(Delimiter::None, tokens)
    }

    #[test]
    fn accepts_values_from_macro_rules_fragments() {
        let topic = fragment(quote!("orders"));
        let retries = fragment(quote!(3));
        let delay = fragment(quote!("10s"));
        let timeout = fragment(quote!("30s"));
        let mut errors = Errors::default();
        let args = parse(
            quote!(topic = #topic, retries = #retries, retry_delays = [#delay], timeout = #timeout),
            &mut errors,
        );
        assert!(errors.into_error().is_none());
        assert_eq!(args.topic.map(|lit| lit.value()).as_deref(), Some("orders"));
        assert_eq!(args.retries, Some(3));
        assert!(matches!(args.backoff, Some(BackoffArg::Fixed(delays)) if delays == [10_000]));
        assert_eq!(args.timeout, Some(30_000));
    }
}
