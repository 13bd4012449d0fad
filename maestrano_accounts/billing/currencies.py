"""ISO 4217 currency codes, to refuse a bill locally before the platform does.

Active codes of ISO 4217 (list 1), without the fund, precious-metal and testing
codes (X…) nobody is billed in. Kept here rather than taken from a package: the
list changes a few times a decade.
"""

from __future__ import annotations

_CODES = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL
BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP
ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR
IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL
LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR
NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD
SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX
USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
"""

ISO_4217_CURRENCIES: frozenset[str] = frozenset(_CODES.split())


def is_iso_4217(code: object) -> bool:
    """Whether ``code`` is an active ISO 4217 code, upper case as the platform expects."""
    return isinstance(code, str) and code in ISO_4217_CURRENCIES
