//! Code generation: the payload struct, its `Task` impl and registration,
//! the handler adapter and the enqueue helpers.
//!
//! Generated code names only `::rmq::...`, `::rmq::__private::...` and
//! `::core::...`, so that it compiles in a crate that depends on `rmq` alone
//! and whatever the user's module declares (`struct Result;` included).

use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Ident, Type};

use super::args::{BackoffArg, CatchUpArg, TaskArgs};
use super::model::{Param, TaskFn};

/// Names shared by the pieces of one expansion.
pub(crate) struct Names {
    /// The payload struct.
    pub(crate) payload: Ident,
    /// The topic.
    pub(crate) topic: String,
}

impl Names {
    /// The payload struct's name (override or the function's name in
    /// UpperCamelCase) and the topic (override or the function's name).
    pub(crate) fn new(task: &TaskFn<'_>, args: &TaskArgs) -> Names {
        let ident = &task.item.sig.ident;
        let fn_name = unraw(ident);
        let payload = match &args.payload {
            Some(payload) => payload.clone(),
            None => format_ident!("{}", upper_camel(&fn_name), span = ident.span()),
        };
        let topic = match &args.topic {
            Some(lit) => lit.value(),
            None => fn_name,
        };
        Names { payload, topic }
    }
}

/// The full expansion: the function unchanged, then everything it implies.
pub(crate) fn expand(task: &TaskFn<'_>, args: &TaskArgs) -> TokenStream {
    let names = Names::new(task, args);
    let item = task.item;
    let payload_struct = payload_struct(task, args.on.is_some(), &names);
    let methods = methods(task, args, &names);
    let registration = registration(task, args, &names);
    quote! {
        #item
        #payload_struct
        #methods
        #registration
    }
}

/// What is emitted beside the errors when the attribute or signature is
/// wrong but the parameters are understood: the payload struct and its
/// methods, so call sites do not add errors of their own.
pub(crate) fn fallback(task: &TaskFn<'_>, args: &TaskArgs) -> TokenStream {
    let names = Names::new(task, args);
    let payload = &names.payload;
    // Not transparent: a subscriber with the wrong number of payload
    // arguments has its own error, without serde's about the struct.
    let payload_struct = payload_struct(task, false, &names);
    let methods = methods(task, args, &names);
    let receipt = receipt(task, args);
    let output = output(task);
    let unique_task = args.unique.as_ref().map(|_| {
        quote! {
            #[automatically_derived]
            impl ::rmq::UniqueTask for #payload {}
        }
    });
    quote! {
        #payload_struct
        #methods
        #[automatically_derived]
        impl ::rmq::Task for #payload {
            type Receipt = #receipt;
            type Output = #output;

            fn descriptor() -> &'static ::rmq::TaskDescriptor {
                ::core::unreachable!("`#[rmq::task]` reported a compile error")
            }
        }
        #unique_task
    }
}

fn payload_struct(task: &TaskFn<'_>, transparent: bool, names: &Names) -> TokenStream {
    let item = task.item;
    let vis = &item.vis;
    let payload = &names.payload;
    let fn_name = unraw(&item.sig.ident);
    let doc = format!(
        " Payload of the `{fn_name}` task (topic `{}`).",
        names.topic
    );
    let fn_docs: Vec<_> = item
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("doc"))
        .collect();
    let separator = (!fn_docs.is_empty()).then(|| quote!(#[doc = ""]));
    // A subscriber's payload is the event itself, as the publisher encoded
    // it once for every subscriber.
    let transparent = transparent.then(|| quote!(#[serde(transparent)]));
    let fields = task.fields().map(|(ident, ty)| {
        let doc = format!(" The `{}` argument of `{fn_name}`.", unraw(ident));
        // Spanned at the type: the derives report a type that is not serde
        // (de)serializable at the field's first token, which is then the
        // user's type in the signature rather than the attribute.
        quote_spanned! {ty.span()=>
            #[doc = #doc]
            pub #ident: #ty,
        }
    });
    quote! {
        #[doc = #doc]
        #separator
        #(#fn_docs)*
        #[derive(
            ::rmq::__private::serde::Serialize,
            ::rmq::__private::serde::Deserialize,
            ::core::fmt::Debug,
            ::core::clone::Clone,
        )]
        #[serde(crate = "::rmq::__private::serde")]
        #transparent
        #vis struct #payload {
            #(#fields)*
        }
    }
}

fn methods(task: &TaskFn<'_>, args: &TaskArgs, names: &Names) -> TokenStream {
    let payload = &names.payload;
    let fn_name = unraw(&task.item.sig.ident);
    let enqueue_doc = match args.unique {
        None => format!(
            " Enqueues this job of `{fn_name}` on topic `{}` and returns its id.",
            names.topic
        ),
        Some(_) => format!(
            " Enqueues this job of `{fn_name}` on topic `{}`, unless a job with its \
             unique key holds the lock: [`Enqueued::Duplicate`](::rmq::Enqueued) then \
             names that job.",
            names.topic
        ),
    };
    let receipt = receipt(task, args);
    let unique_methods = args.unique.as_ref().map(|_| {
        quote! {
            /// Enqueues with `key` as the unique key instead of the one made
            /// of the payload.
            pub fn unique_key(
                self,
                key: impl ::core::convert::Into<::rmq::__private::String>,
            ) -> ::rmq::Enqueue<Self> {
                ::rmq::Enqueue::new(self).unique_key(key)
            }
        }
    });
    quote! {
        #[automatically_derived]
        impl #payload {
            #[doc = #enqueue_doc]
            ///
            /// The task's default priority and ttl apply; use
            /// [`delay`](Self::delay), [`priority`](Self::priority),
            /// [`ttl`](Self::ttl) or [`job_id`](Self::job_id) to set per-call
            /// options.
            pub async fn enqueue(
                self,
                client: &::rmq::Client,
            ) -> ::core::result::Result<#receipt, ::rmq::Error> {
                ::rmq::Enqueue::new(self).enqueue(client).await
            }
            #unique_methods

            /// Runs the job no earlier than `delay` from now.
            pub fn delay(self, delay: ::rmq::__private::Duration) -> ::rmq::Enqueue<Self> {
                ::rmq::Enqueue::new(self).delay(delay)
            }

            /// Overrides the task's default priority for this job.
            pub fn priority(self, priority: ::rmq::Priority) -> ::rmq::Enqueue<Self> {
                ::rmq::Enqueue::new(self).priority(priority)
            }

            /// Gives up on the job if it has not started within `ttl`.
            pub fn ttl(self, ttl: ::rmq::__private::Duration) -> ::rmq::Enqueue<Self> {
                ::rmq::Enqueue::new(self).ttl(ttl)
            }

            /// Enqueues with an explicit id: a second job with the same id
            /// while the first is queued or running is refused.
            pub fn job_id(
                self,
                id: impl ::core::convert::Into<::rmq::JobId>,
            ) -> ::rmq::Enqueue<Self> {
                ::rmq::Enqueue::new(self).job_id(id)
            }

            /// Starts a chain: `next` runs once this job has completed.
            pub fn then<B: ::rmq::Task>(self, next: B) -> ::rmq::Chain<B> {
                ::rmq::Chain::new(self).then(next)
            }

            /// Starts a chain whose next step is a job of `B` made of this
            /// job's result (the task returns `B`'s payload struct).
            pub fn then_result<B: ::rmq::Task>(self) -> ::rmq::Chain<B>
            where
                Self: ::rmq::Task<Output = B>,
            {
                ::rmq::Chain::new(self).then_result()
            }
        }
    }
}

fn registration(task: &TaskFn<'_>, args: &TaskArgs, names: &Names) -> TokenStream {
    let payload = &names.payload;
    let fn_ident = &task.item.sig.ident;
    let topic = &names.topic;
    let function = unraw(fn_ident);
    let payload_name = unraw(payload);

    let invocation = hidden("__rmq_invocation");
    let handler = hidden("__rmq_handler");
    let descriptor = hidden("__RMQ_DESCRIPTOR");
    let assert_serialize = hidden("__rmq_assert_serialize");
    let assert_deserialize = hidden("__rmq_assert_deserialize");

    let assertions = task.fields().map(|(_, ty)| {
        quote_spanned! {ty.span()=>
            let _ = #assert_serialize::<#ty>;
            let _ = #assert_deserialize::<#ty>;
        }
    });

    let mut bindings = Vec::new();
    let mut call_args = Vec::new();
    let mut destructure = Vec::new();
    for (index, param) in task.params.iter().enumerate() {
        let arg = hidden(&format!("__rmq_arg_{index}"));
        match param {
            Param::Payload { ident, .. } => destructure.push(quote!(#ident: #arg)),
            Param::Context { ty } => bindings.push(quote_spanned! {ty.span()=>
                let #arg: #ty = ::core::clone::Clone::clone(#invocation.context());
            }),
            Param::State { ty, inner } => bindings.push(quote_spanned! {ty.span()=>
                let #arg: #ty = #invocation.state::<#inner>()?;
            }),
        }
        call_args.push(arg);
    }
    // Spanned at the function's name: an error type that does not convert
    // into `TaskError` is reported there.
    let call = quote_spanned! {fn_ident.span()=>
        #fn_ident(#(#call_args),*)
            .await
            .map_err(::core::convert::Into::<::rmq::TaskError>::into)
    };
    let value = hidden("__rmq_value");
    // Spanned at the return type's `T`: a `T` that is not serializable is
    // reported there.
    let output_call = match task.output {
        Some(ty) => quote_spanned! {ty.span()=> #invocation.output(&#value) },
        None => quote!(#invocation.output(&#value)),
    };
    let run = quote! {
        ::rmq::__private::Box::pin(async move {
            let #payload { #(#destructure),* } = #invocation.decode::<#payload>()?;
            #(#bindings)*
            let #value = #call?;
            #output_call
        })
    };

    let fields = task.fields().map(|(ident, ty)| {
        let name = unraw(ident);
        let ty = type_name(ty);
        quote!((#name, #ty))
    });
    let policy = policy(args);
    let receipt = receipt(task, args);
    let output = output(task);
    let unique_task = args.unique.as_ref().map(|_| {
        quote! {
            #[automatically_derived]
            impl ::rmq::UniqueTask for #payload {}
        }
    });
    let subscription = subscription(task, args, names);
    let state = task.params.iter().filter_map(|param| match param {
        Param::State { inner, .. } => Some(quote!(::rmq::__private::StateNeed::of::<#inner>())),
        _ => None,
    });

    quote! {
        const _: () = {
            fn #assert_serialize<T: ::rmq::__private::serde::Serialize>() {}
            fn #assert_deserialize<T: ::rmq::__private::serde::de::DeserializeOwned>() {}
            const _: () = {
                #(#assertions)*
            };

            // `E` may already be `TaskError`; the conversion is then the identity.
            #[allow(clippy::useless_conversion)]
            fn #handler(
                #invocation: ::rmq::__private::Invocation,
            ) -> ::rmq::__private::BoxFuture<
                ::core::result::Result<::core::option::Option<::rmq::__private::Vec<u8>>, ::rmq::TaskError>,
            > {
                #run
            }

            static #descriptor: ::rmq::TaskDescriptor = ::rmq::TaskDescriptor {
                topic: #topic,
                function: #function,
                module_path: ::core::module_path!(),
                payload_type: #payload_name,
                fields: &[#(#fields),*],
                policy: #policy,
                handler: #handler,
                state: &[#(#state),*],
                encode_json: ::rmq::__private::encode_json::<#payload>,
            };

            ::rmq::__private::inventory::submit! {
                ::rmq::__private::Registration(&#descriptor)
            }

            #[automatically_derived]
            impl ::rmq::Task for #payload {
                type Receipt = #receipt;
                type Output = #output;

                fn descriptor() -> &'static ::rmq::TaskDescriptor {
                    &#descriptor
                }
            }
            #unique_task
            #subscription
        };
    }
}

/// For `on = Event`: the `Subscriber` impl (whose bound reports an `Event`
/// that is not an event, under the user's token), the check that `Event`
/// is the type of the payload argument (under the argument), and the
/// link-time subscription.
fn subscription(task: &TaskFn<'_>, args: &TaskArgs, names: &Names) -> Option<TokenStream> {
    let on = args.on.as_ref()?;
    let (ident, ty) = task.fields().next()?;
    let payload = &names.payload;
    let descriptor = hidden("__RMQ_DESCRIPTOR");
    let same_type = hidden("__rmq_same_type");
    let event = hidden("__rmq_event");
    let same = quote_spanned! {ty.span()=>
        fn #same_type(#ident: #on) -> #ty {
            #ident
        }
    };
    Some(quote! {
        #same

        #[automatically_derived]
        impl ::rmq::event::Subscriber for #payload {
            type Event = #on;

            fn from_event(#event: #on) -> Self {
                #payload { #ident: #same_type(#event) }
            }
        }

        ::rmq::__private::inventory::submit! {
            ::rmq::event::Subscription::of::<#payload>(&#descriptor)
        }
    })
}

fn policy(args: &TaskArgs) -> TokenStream {
    let some = |value: TokenStream| quote!(::core::option::Option::Some(#value));
    let none = quote!(::core::option::Option::None);
    let retries = match args.retries {
        Some(n) => some(Literal::u32_suffixed(n.into()).into_token_stream()),
        None => none.clone(),
    };
    let backoff = match &args.backoff {
        Some(BackoffArg::Fixed(delays)) => {
            let delays = delays.iter().map(|ms| duration(*ms));
            let delays_const = hidden("__RMQ_DELAYS");
            some(quote! {
                ::rmq::Backoff::Fixed({
                    const #delays_const: &[::rmq::__private::Duration] = &[#(#delays),*];
                    #delays_const
                })
            })
        }
        Some(BackoffArg::Exponential { base, max }) => {
            let (base, max) = (duration(*base), duration(*max));
            some(quote!(::rmq::Backoff::Exponential { base: #base, max: #max }))
        }
        None => none.clone(),
    };
    let priority = match &args.priority {
        Some(variant) => quote!(::rmq::Priority::#variant),
        None => quote!(::rmq::Priority::Normal),
    };
    let timeout = args
        .timeout
        .map_or_else(|| none.clone(), |ms| some(duration(ms)));
    let ttl = args
        .ttl
        .map_or_else(|| none.clone(), |ms| some(duration(ms)));
    let index = args.index.unwrap_or(false);
    let unique = match &args.unique {
        Some(unique) => {
            let mode = &unique.mode;
            let ttl = match unique.ttl {
                Some(ms) => duration(ms),
                None => quote!(::rmq::DEFAULT_UNIQUE_TTL),
            };
            let fields = match &unique.fields {
                Some(fields) => {
                    let names = fields.iter().map(unraw);
                    some(quote!(&[#(#names),*]))
                }
                None => none.clone(),
            };
            some(quote! {
                ::rmq::UniquePolicy {
                    mode: ::rmq::UniqueMode::#mode,
                    ttl: #ttl,
                    fields: #fields,
                }
            })
        }
        None => none.clone(),
    };
    let cron = match &args.cron {
        Some(expression) => {
            let tz = args
                .tz
                .as_ref()
                .map_or_else(|| "UTC".to_owned(), |lit| lit.value());
            let overlap = match &args.overlap {
                Some(variant) => quote!(::rmq::Overlap::#variant),
                None => quote!(::rmq::Overlap::Skip),
            };
            let catch_up = match &args.catch_up {
                Some(CatchUpArg::None) => quote!(::rmq::CatchUp::None),
                Some(CatchUpArg::One) | None => quote!(::rmq::CatchUp::One),
                Some(CatchUpArg::All(ms)) => {
                    let within = duration(*ms);
                    quote!(::rmq::CatchUp::All { within: #within })
                }
            };
            let payload = match &args.cron_payload {
                Some((lit, _)) => some(lit.to_token_stream()),
                None => none.clone(),
            };
            some(quote! {
                ::rmq::CronPolicy {
                    expression: #expression,
                    tz: #tz,
                    overlap: #overlap,
                    catch_up: #catch_up,
                    payload: #payload,
                }
            })
        }
        None => none.clone(),
    };
    let rate = match args.rate {
        Some((count, per)) => {
            let count = Literal::u32_suffixed(count);
            let per = duration(per);
            some(quote!(::rmq::Rate::new(#count, #per)))
        }
        None => none.clone(),
    };
    let concurrency = match args.concurrency {
        Some(n) => some(Literal::u32_suffixed(n).into_token_stream()),
        None => none.clone(),
    };
    let rate_key = match &args.rate_key {
        Some(key) => some(quote!(#key)),
        None => none.clone(),
    };
    let keep_result = args.keep_result.map_or(none, |ms| some(duration(ms)));
    quote! {
        ::rmq::TaskPolicy {
            retries: #retries,
            backoff: #backoff,
            priority: #priority,
            timeout: #timeout,
            ttl: #ttl,
            index: #index,
            unique: #unique,
            rate: #rate,
            concurrency: #concurrency,
            rate_key: #rate_key,
            cron: #cron,
            keep_result: #keep_result,
        }
    }
}

/// What the task's enqueues return: a unique task's says whether it was a
/// duplicate; a `keep_result` task's is a handle on the result.
fn receipt(task: &TaskFn<'_>, args: &TaskArgs) -> TokenStream {
    match (&args.unique, args.keep_result) {
        (Some(_), _) => quote!(::rmq::Enqueued),
        (None, Some(_)) => {
            let output = output(task);
            quote!(::rmq::Job<#output>)
        }
        (None, None) => quote!(::rmq::JobId),
    }
}

/// The `T` of the function's `Result<T, E>` (`()` when it is not
/// understood: an error says so).
fn output(task: &TaskFn<'_>) -> TokenStream {
    match task.output {
        Some(ty) => ty.to_token_stream(),
        None => quote!(()),
    }
}

fn duration(millis: u64) -> TokenStream {
    let millis = Literal::u64_suffixed(millis);
    quote!(::rmq::__private::Duration::from_millis(#millis))
}

/// A name the expansion introduces, as opposed to one the user wrote.
///
/// Every such name is made here, with one deliberate span, and interpolated
/// wherever it is used. Written out inside a `quote_spanned!` instead, a use
/// would take the hygiene context of the user's token it is spanned at,
/// which differs from the one its definition gets whenever the function and
/// the attribute come from different expansions (a task written by a
/// `macro_rules!` macro, say): the use then does not find the definition.
///
/// `Span::mixed_site()` makes hidden locals invisible to user code, so they
/// can neither shadow nor be shadowed by the user's names, and resolves
/// hidden items at the call site like the rest of the expansion.
fn hidden(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// An identifier without its `r#` prefix.
pub(crate) fn unraw(ident: &Ident) -> String {
    let name = ident.to_string();
    name.strip_prefix("r#").map(str::to_owned).unwrap_or(name)
}

/// `handle_order` -> `HandleOrder`.
pub(crate) fn upper_camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    for part in snake.split('_').filter(|part| !part.is_empty()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    out
}

/// A type as a user would write it: `Vec<String>`, not `Vec < String >`.
pub(crate) fn type_name(ty: &Type) -> String {
    ty.to_token_stream()
        .to_string()
        .replace(" :: ", "::")
        .replace(":: ", "::")
        .replace(" < ", "<")
        .replace(" <", "<")
        .replace(" >", ">")
        .replace(" ,", ",")
        .replace(" ;", ";")
        .replace("& ", "&")
}

#[cfg(test)]
mod tests {
    use super::{type_name, upper_camel};

    #[test]
    fn camel_cases_function_names() {
        assert_eq!(upper_camel("handle_order"), "HandleOrder");
        assert_eq!(upper_camel("send"), "Send");
        assert_eq!(upper_camel("_private_task"), "PrivateTask");
        assert_eq!(upper_camel("task_v2"), "TaskV2");
    }

    #[test]
    fn renders_types_compactly() {
        let ty: syn::Type = syn::parse_quote!(::std::collections::HashMap<String, Vec<u8>>);
        assert_eq!(
            type_name(&ty),
            "::std::collections::HashMap<String, Vec<u8>>"
        );
        let ty: syn::Type = syn::parse_quote!([u8; 4]);
        assert_eq!(type_name(&ty), "[u8; 4]");
        let ty: syn::Type = syn::parse_quote!(Option<(u8, String)>);
        assert_eq!(type_name(&ty), "Option<(u8, String)>");
    }
}
