//! `#[rmq::event]`: an event type, published to every task that subscribes
//! to it with `#[rmq::task(on = ...)]`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput, Fields};

use crate::task::codegen::{type_name, unraw};

/// Expands `#[rmq::event(args)] item`. On error, the item is emitted
/// unchanged together with every error found.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let input: DeriveInput = match syn::parse2(item.clone()) {
        Ok(input) => input,
        Err(error) => {
            let error = syn::Error::new(
                error.span(),
                "`#[rmq::event]` applies to a struct or an enum: the event's data",
            )
            .to_compile_error();
            return quote!(#item #error);
        }
    };
    let mut errors: Option<syn::Error> = None;
    let mut push = |error: syn::Error| match &mut errors {
        Some(first) => first.combine(error),
        None => errors = Some(error),
    };
    if !args.is_empty() {
        push(syn::Error::new_spanned(
            &args,
            "`#[rmq::event]` takes no arguments: subscribers choose their topic, \
             retries and priority with `#[rmq::task(topic = .., on = ..)]`",
        ));
    }
    if let Data::Union(data) = &input.data {
        push(syn::Error::new_spanned(
            data.union_token,
            "an event cannot be a union: use a struct or an enum",
        ));
    }
    if !input.generics.params.is_empty() || input.generics.where_clause.is_some() {
        push(syn::Error::new_spanned(
            &input.generics,
            "event types cannot be generic: subscribers are matched to one concrete type",
        ));
    }
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("derive")) {
        let _ = attr.parse_nested_meta(|meta| {
            let last = meta.path.segments.last().map(|s| s.ident.to_string());
            if let Some(name @ ("Serialize" | "Deserialize")) = last.as_deref() {
                push(syn::Error::new_spanned(
                    &meta.path,
                    format_args!(
                        "`#[rmq::event]` derives `Serialize` and `Deserialize` itself: \
                         remove `{name}` from this derive"
                    ),
                ));
            }
            Ok(())
        });
    }
    if let Some(errors) = errors {
        let errors = errors.to_compile_error();
        return quote!(#item #errors);
    }

    let ident = &input.ident;
    let name = unraw(ident);
    let fields = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(named) => named
                .named
                .iter()
                .filter_map(|field| {
                    let field_name = unraw(field.ident.as_ref()?);
                    let ty = type_name(&field.ty);
                    Some(quote!((#field_name, #ty)))
                })
                .collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    let descriptor = proc_macro2::Ident::new("__RMQ_EVENT", proc_macro2::Span::mixed_site());
    let publish_doc = format!(
        " Publishes this `{name}`: one job on every subscriber's topic, each with \
         its subscriber's retries, priority and dead-letter queue. The event id is \
         generated; give one with [`event_id`](Self::event_id) to make a \
         re-publish harmless."
    );
    quote! {
        #[derive(
            ::rmq::__private::serde::Serialize,
            ::rmq::__private::serde::Deserialize,
        )]
        #[serde(crate = "::rmq::__private::serde")]
        #input

        const _: () = {
            static #descriptor: ::rmq::event::EventDescriptor = ::rmq::event::EventDescriptor {
                name: ::core::concat!(::core::module_path!(), "::", #name),
                type_name: #name,
                fields: &[#(#fields),*],
            };

            ::rmq::__private::inventory::submit! {
                ::rmq::event::EventRegistration(&#descriptor)
            }

            #[automatically_derived]
            impl ::rmq::event::Trigger for #ident {
                const NAME: &'static str = ::core::concat!(::core::module_path!(), "::", #name);
            }

            #[automatically_derived]
            impl ::rmq::event::Event for #ident {
                fn descriptor() -> &'static ::rmq::event::EventDescriptor {
                    &#descriptor
                }
            }
        };

        #[automatically_derived]
        impl #ident {
            #[doc = #publish_doc]
            pub async fn publish(
                self,
                client: &::rmq::Client,
            ) -> ::core::result::Result<::rmq::Published, ::rmq::Error> {
                ::rmq::event::Publish::new(self).publish(client).await
            }

            /// Publishes with the event id `id`: a second publish with the
            /// same id enqueues nothing where the first one's job is still
            /// queued, delayed or running.
            pub fn event_id(
                self,
                id: impl ::core::convert::Into<::rmq::__private::String>,
            ) -> ::rmq::event::Publish<Self> {
                ::rmq::event::Publish::new(self).event_id(id)
            }
        }
    }
}
