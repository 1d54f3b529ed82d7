//! Enums spelled as strings in config files and on the command line.
//!
//! [`choice_enum!`] declares an enum together with its spellings; [`Choice::parse`] turns what
//! the user wrote into a variant, or into a message listing the valid spellings with a
//! did-you-mean for near misses. The same enums are clap `ValueEnum`s, so `--help` lists the
//! spellings the config accepts and the two cannot drift.

use crate::error::suggestion;

/// An enum whose variants are spelled as strings in configs and on the command line.
pub trait Choice: Copy + Sized + 'static {
    /// What the choice is, for messages ("activation", "loss").
    const WHAT: &'static str;
    /// Every variant, in documentation order.
    const ALL: &'static [Self];

    /// The spelling of this variant.
    fn name(self) -> &'static str;

    /// Parses a spelling, or explains what would be valid.
    fn parse(given: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .copied()
            .find(|choice| choice.name() == given)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|choice| choice.name()).collect();
                format!(
                    "unknown {} \"{given}\"{}; valid: {}",
                    Self::WHAT,
                    suggestion(given, names.iter().copied()),
                    names.join(", ")
                )
            })
    }
}

/// Declares a [`Choice`] enum: `choice_enum!(pub Loss "loss" { Mse = "mse", ... })`.
macro_rules! choice_enum {
    ($(#[$meta:meta])* $vis:vis $name:ident $what:literal {
        $($(#[$vmeta:meta])* $variant:ident = $spelling:literal),+ $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $crate::choice::Choice for $name {
            const WHAT: &'static str = $what;
            const ALL: &'static [Self] = &[$(Self::$variant),+];

            fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $spelling),+
                }
            }
        }

        /// The same spellings on the command line (clap lists them in `--help`).
        impl clap::ValueEnum for $name {
            fn value_variants<'a>() -> &'a [Self] {
                <Self as $crate::choice::Choice>::ALL
            }

            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                Some(clap::builder::PossibleValue::new($crate::choice::Choice::name(*self)))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($crate::choice::Choice::name(*self))
            }
        }
    };
}
pub(crate) use choice_enum;
