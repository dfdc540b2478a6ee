#ifndef MUSTER_CIDN2_SHIM_H
#define MUSTER_CIDN2_SHIM_H
#include <idn2.h>

/* The one way MusterKit calls libidn2 (Debian libidn2-dev): UTS #46 processing,
   non-transitional, with IDNA2008 validation, NFC applied to the input first.
   IDN2_USE_STD3_ASCII_RULES is deliberately NOT set: libidn2 2.3.3 silently drops the
   code points it forbids under that flag ('a$b' becomes 'ab'), so muster applies the
   STD3 rule (letters, digits, hyphens) itself, on libidn2's output. */
static const int muster_idn2_flags = IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL;

static const int muster_idn2_ok = IDN2_OK;
static const int muster_idn2_disallowed = IDN2_DISALLOWED;
static const int muster_idn2_unassigned = IDN2_UNASSIGNED;
static const int muster_idn2_bidi = IDN2_BIDI;
static const int muster_idn2_contextj = IDN2_CONTEXTJ;
static const int muster_idn2_contexto = IDN2_CONTEXTO;
static const int muster_idn2_leading_combining = IDN2_LEADING_COMBINING;
static const int muster_idn2_hyphen_startend = IDN2_HYPHEN_STARTEND;
static const int muster_idn2_2hyphen = IDN2_2HYPHEN;
static const int muster_idn2_too_big_label = IDN2_TOO_BIG_LABEL;
static const int muster_idn2_too_big_domain = IDN2_TOO_BIG_DOMAIN;
static const int muster_idn2_punycode_big_output = IDN2_PUNYCODE_BIG_OUTPUT;
static const int muster_idn2_punycode_overflow = IDN2_PUNYCODE_OVERFLOW;
static const int muster_idn2_punycode_bad_input = IDN2_PUNYCODE_BAD_INPUT;
static const int muster_idn2_invalid_alabel = IDN2_INVALID_ALABEL;
static const int muster_idn2_alabel_roundtrip_failed = IDN2_ALABEL_ROUNDTRIP_FAILED;
static const int muster_idn2_invalid_transitional = IDN2_INVALID_TRANSITIONAL;
static const int muster_idn2_invalid_nontransitional = IDN2_INVALID_NONTRANSITIONAL;

#endif
