//! `#[rmq::task]`: parse the attribute ([`args`]), analyse the function
//! ([`model`]), generate code ([`codegen`]).

mod args;
pub(crate) mod codegen;
mod duration;
mod errors;
mod model;

use proc_macro2::TokenStream;
use quote::quote;
use syn::ItemFn;

use errors::Errors;

/// Expands `#[rmq::task(args)] item`. On error, the function is emitted
/// unchanged together with every error found, so the rest of the crate (and
/// an IDE) still sees it.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let item_fn: ItemFn = match syn::parse2(item.clone()) {
        Ok(item_fn) => item_fn,
        Err(error) => {
            let error =
                syn::Error::new(error.span(), "`#[rmq::task]` applies to an `async fn` only");
            let error = error.to_compile_error();
            return quote!(#item #error);
        }
    };

    let mut errors = Errors::default();
    let args = args::parse(args, &mut errors);
    args.check_cron_keys(&mut errors);
    let task = model::analyse(&item_fn, &mut errors);
    if let Some(task) = &task {
        check_unique_fields(task, &args, &mut errors);
        check_on(task, &args, &mut errors);
    }
    if let (Some(task), Some(key)) = (&task, &args.rate_key) {
        let name = key.value();
        if !task
            .fields()
            .any(|(ident, _)| codegen::unraw(ident) == name)
        {
            let fields: Vec<String> = task
                .fields()
                .map(|(ident, _)| format!("`{}`", codegen::unraw(ident)))
                .collect();
            let message = if fields.is_empty() {
                format!("rate_key `{name}` is not a payload field: this task has none")
            } else {
                format!(
                    "rate_key `{name}` is not a payload field; expected one of: {}",
                    fields.join(", ")
                )
            };
            errors.push(syn::Error::new(key.span(), message));
        }
    }
    // A `cron_payload` that did not parse has its own error already.
    let bad_payload =
        args.cron_payload.is_none() && args.cron_only.iter().any(|p| p.is_ident("cron_payload"));
    // A subscriber with `cron` has its own error.
    if let (Some(task), Some(_), false, None) = (&task, &args.cron, bad_payload, &args.on) {
        model::check_cron(task, args.cron_payload.as_ref(), &mut errors);
    }
    match (task, errors.into_error()) {
        (Some(task), None) => codegen::expand(&task, &args),
        (task, error) => {
            let fallback = task.map(|task| codegen::fallback(&task, &args));
            let error = error.map(|error| error.to_compile_error());
            quote! {
                #item_fn
                #fallback
                #error
            }
        }
    }
}

/// A task with `on = Event` takes the event as its one payload argument
/// (the argument's type is checked against `Event` by the generated code),
/// and runs when the event is published, not on a schedule.
fn check_on(task: &model::TaskFn<'_>, args: &args::TaskArgs, errors: &mut Errors) {
    let Some(on) = &args.on else {
        return;
    };
    let event = quote!(#on).to_string().replace(' ', "");
    if let Some(cron) = &args.cron {
        errors.push(syn::Error::new_spanned(
            cron,
            "`cron` cannot be combined with `on`: a subscriber runs when its event is \
             published; declare the periodic task separately",
        ));
    }
    let mut fields = task.fields();
    if fields.next().is_none() {
        errors.push(syn::Error::new_spanned(
            on,
            format_args!(
                "a task with `on = {event}` takes the event as its payload argument: \
                 add one, e.g. `event: {event}`"
            ),
        ));
    }
    for (ident, ty) in fields {
        errors.push(syn::Error::new_spanned(
            quote!(#ident: #ty),
            format_args!(
                "a task with `on = {event}` takes the event as its only payload argument, \
                 and `{}` is another one: read it from the event, or take `State<T>` or \
                 `JobContext` instead",
                codegen::unraw(ident)
            ),
        ));
    }
}

/// Every field of `unique(key = ...)` must be a payload field of the
/// function: the error sits on the name that is not.
fn check_unique_fields(task: &model::TaskFn<'_>, args: &args::TaskArgs, errors: &mut Errors) {
    let Some(fields) = args.unique.as_ref().and_then(|u| u.fields.as_ref()) else {
        return;
    };
    let payload: Vec<String> = task.fields().map(|(ident, _)| ident.to_string()).collect();
    for field in fields {
        if !payload.contains(&field.to_string()) {
            let known = if payload.is_empty() {
                "the function has no payload fields".to_owned()
            } else {
                format!(
                    "the payload fields are: {}",
                    payload
                        .iter()
                        .map(|f| format!("`{f}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            errors.push(syn::Error::new_spanned(
                field,
                format_args!("unknown field `{field}` in `unique(key = ...)`; {known}"),
            ));
        }
    }
}
