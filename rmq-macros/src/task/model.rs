//! The analysed task function: which parameters are payload fields, which
//! are injected, and whether the signature can be a task at all.

use syn::{FnArg, GenericArgument, Ident, ItemFn, Pat, PathArguments, ReturnType, Type};

use super::errors::Errors;

/// A task function, checked.
pub(crate) struct TaskFn<'a> {
    /// The function as written.
    pub(crate) item: &'a ItemFn,
    /// Its parameters, in order.
    pub(crate) params: Vec<Param<'a>>,
    /// The `T` of its `Result<T, E>`; `None` when the return type is not
    /// understood (an error says so).
    pub(crate) output: Option<&'a Type>,
}

/// One parameter of a task function.
pub(crate) enum Param<'a> {
    /// A payload field: becomes a field of the payload struct.
    Payload {
        /// The parameter's name, which is the field's name.
        ident: &'a Ident,
        /// Its type.
        ty: &'a Type,
    },
    /// `JobContext`: a clone of the running job's context.
    Context {
        /// The type as written.
        ty: &'a Type,
    },
    /// `State<T>`: the shared value of type `T`.
    State {
        /// The type as written.
        ty: &'a Type,
        /// `T`.
        inner: &'a Type,
    },
}

impl TaskFn<'_> {
    /// The payload fields, in order.
    pub(crate) fn fields(&self) -> impl Iterator<Item = (&Ident, &Type)> + '_ {
        self.params.iter().filter_map(|param| match param {
            Param::Payload { ident, ty } => Some((*ident, *ty)),
            _ => None,
        })
    }
}

/// Checks `item` and sorts its parameters. Every problem is recorded in
/// `errors`; the result is `None` only when the parameters themselves cannot
/// be understood.
pub(crate) fn analyse<'a>(item: &'a ItemFn, errors: &mut Errors) -> Option<TaskFn<'a>> {
    let sig = &item.sig;

    if sig.asyncness.is_none() {
        errors.push(syn::Error::new_spanned(
            sig.fn_token,
            "task functions must be `async`: add `async` before `fn`",
        ));
    }
    if let Some(constness) = &sig.constness {
        errors.push(syn::Error::new_spanned(
            constness,
            "task functions cannot be `const`",
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.push(syn::Error::new_spanned(
            unsafety,
            "task functions cannot be `unsafe`: the worker calls them with data from Redis",
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(syn::Error::new_spanned(
            abi,
            "task functions cannot have an `extern` ABI",
        ));
    }
    const GENERIC: &str = "task functions cannot be generic: a task is registered once, \
                           with one concrete payload type";
    if !sig.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(&sig.generics, GENERIC));
    } else if let Some(where_clause) = &sig.generics.where_clause {
        errors.push(syn::Error::new_spanned(where_clause, GENERIC));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            variadic,
            "task functions cannot be variadic",
        ));
    }
    let output = check_return(&sig.output, &sig.ident, errors);

    let mut params = Vec::with_capacity(sig.inputs.len());
    let mut understood = true;
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => {
                errors.push(syn::Error::new_spanned(
                    receiver,
                    "task functions cannot take `self`: write a free function; \
                     its arguments become the payload",
                ));
                understood = false;
            }
            FnArg::Typed(typed) => {
                let Some(ident) = plain_ident(&typed.pat) else {
                    errors.push(syn::Error::new_spanned(
                        &typed.pat,
                        "task arguments must be plain names such as `order_id: String`, \
                         since they become payload fields; destructure inside the function",
                    ));
                    understood = false;
                    continue;
                };
                match classify(ident, &typed.ty) {
                    Ok(param) => params.push(param),
                    Err(error) => {
                        errors.push(error);
                        understood = false;
                    }
                }
            }
        }
    }

    understood.then_some(TaskFn {
        item,
        params,
        output,
    })
}

/// A `cron` task's runs carry `cron_payload`, or no payload: every payload
/// argument needs a value there (an `Option` may be left out), and every
/// key there must be a payload argument.
pub(crate) fn check_cron(
    task: &TaskFn<'_>,
    payload: Option<&(syn::LitStr, Vec<String>)>,
    errors: &mut Errors,
) {
    let fields: Vec<(String, &Ident, &Type)> = task
        .fields()
        .map(|(ident, ty)| {
            let name = ident.to_string();
            (
                name.strip_prefix("r#").unwrap_or(&name).to_owned(),
                ident,
                ty,
            )
        })
        .collect();
    let Some((lit, keys)) = payload else {
        for (name, ident, ty) in &fields {
            errors.push(syn::Error::new_spanned(
                quote::quote!(#ident: #ty),
                format_args!(
                    "a `cron` task without `cron_payload` cannot take payload arguments \
                     (`{name}` is one): give their values with e.g. \
                     `cron_payload = r#\"{{\"{name}\": ...}}\"#`, take the value from \
                     `State<T>`, or schedule the task at run time with `Client::set_schedule`"
                ),
            ));
        }
        return;
    };
    for key in keys {
        if !fields.iter().any(|(name, _, _)| name == key) {
            let valid = fields
                .iter()
                .map(|(name, _, _)| format!("`{name}`"))
                .collect::<Vec<_>>()
                .join(", ");
            errors.push(syn::Error::new(
                lit.span(),
                format_args!(
                    "cron_payload has `{key}`, which is not a payload argument of the task; \
                     expected {}",
                    if valid.is_empty() {
                        "none".to_owned()
                    } else {
                        valid
                    }
                ),
            ));
        }
    }
    for (name, ident, ty) in &fields {
        let optional = last_segment(ty).is_some_and(|segment| segment.ident == "Option");
        if !optional && !keys.contains(name) {
            errors.push(syn::Error::new_spanned(
                quote::quote!(#ident: #ty),
                format_args!("`{name}` has no value in `cron_payload`"),
            ));
        }
    }
}

fn plain_ident(pat: &Pat) -> Option<&Ident> {
    match pat {
        Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => Some(&p.ident),
        _ => None,
    }
}

/// The last path segment of `ty`, if it is a path type.
fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last(),
        Type::Group(group) => last_segment(&group.elem),
        Type::Paren(paren) => last_segment(&paren.elem),
        _ => None,
    }
}

fn classify<'a>(ident: &'a Ident, ty: &'a Type) -> syn::Result<Param<'a>> {
    if let Some(segment) = last_segment(ty) {
        if segment.ident == "JobContext" {
            return Ok(Param::Context { ty });
        }
        if segment.ident == "State" {
            let inner = match &segment.arguments {
                PathArguments::AngleBracketed(args) if args.args.len() == 1 => {
                    match args.args.first() {
                        Some(GenericArgument::Type(inner)) => Some(inner),
                        _ => None,
                    }
                }
                _ => None,
            };
            return match inner {
                Some(inner) => Ok(Param::State { ty, inner }),
                None => Err(syn::Error::new_spanned(
                    ty,
                    "`State` takes the type of the shared value, e.g. `State<Db>`",
                )),
            };
        }
    }
    match ty {
        Type::Reference(reference) => Err(syn::Error::new_spanned(
            reference,
            "payload arguments must be owned, since they are decoded from the stored job: \
             use e.g. `String` instead of `&str`",
        )),
        Type::ImplTrait(_) => Err(syn::Error::new_spanned(
            ty,
            "task functions cannot be generic: `impl Trait` arguments are not supported",
        )),
        _ => Ok(Param::Payload { ident, ty }),
    }
}

/// The `T` of the function's `Result<T, E>`, or an error.
fn check_return<'a>(output: &'a ReturnType, name: &Ident, errors: &mut Errors) -> Option<&'a Type> {
    const MESSAGE: &str = "task functions must return `Result<T, E>`, where `T` is `()` or \
                           a serde (de)serializable result and `E` converts into \
                           `rmq::TaskError`";
    match output {
        ReturnType::Default => {
            errors.push(syn::Error::new(
                name.span(),
                format_args!("{MESSAGE}; add e.g. `-> Result<(), rmq::TaskError>`"),
            ));
            None
        }
        ReturnType::Type(_, ty) => {
            let ok = last_segment(ty).and_then(|segment| match &segment.arguments {
                PathArguments::AngleBracketed(args)
                    if segment.ident == "Result" && args.args.len() == 2 =>
                {
                    match args.args.first() {
                        Some(GenericArgument::Type(ok)) => Some(ok),
                        _ => None,
                    }
                }
                _ => None,
            });
            if ok.is_none() {
                errors.push(syn::Error::new_spanned(ty, MESSAGE));
            }
            ok
        }
    }
}
