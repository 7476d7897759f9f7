"""The parcel carriers the shop ships with: Sweet Tracker's code for each, its name, and the link
to its public tracking page. `GET /carriers` lists them; shipping an order checks against them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

# Tracking numbers as carriers print them: digits, sometimes letters (EMS), often with hyphens or
# spaces on the label. They are stored and sent to the carrier without the separators.
TRACKING_NUMBER = re.compile(r"[0-9A-Z]{6,30}")


@dataclass(frozen=True)
class Carrier:
    code: str  # Sweet Tracker's t_code
    name: str
    name_en: str
    tracking_url: str  # the public tracking page, "{number}" standing for the tracking number

    def url_for(self, tracking_number: str) -> str:
        return self.tracking_url.format(number=quote(tracking_number, safe=""))


CARRIERS: dict[str, Carrier] = {
    c.code: c
    for c in (
        Carrier("04", "CJ대한통운", "CJ Logistics", "https://trace.cjlogistics.com/next/tracking.html?wblNo={number}"),
        Carrier(
            "01",
            "우체국택배",
            "Korea Post",
            "https://service.epost.go.kr/trace.RetrieveDomRigiTraceList.comm?sid1={number}",
        ),
        Carrier(
            "05",
            "한진택배",
            "Hanjin",
            "https://www.hanjin.com/kor/CMS/DeliveryMgr/WaybillResult.do?mCode=MN038&schLang=KR&wblnumText2={number}",
        ),
        Carrier(
            "08",
            "롯데택배",
            "Lotte Global Logistics",
            "https://www.lotteglogis.com/home/reservation/tracking/linkView?InvNo={number}",
        ),
        Carrier("06", "로젠택배", "Logen", "https://www.ilogen.com/web/personal/trace/{number}"),
        Carrier(
            "23", "경동택배", "Kyungdong Express", "https://kdexp.com/service/delivery/etc/delivery.do?barcode={number}"
        ),
    )
}


def get(code: str | None) -> Carrier | None:
    return CARRIERS.get(code or "")


def normalize_tracking_number(raw: str) -> str | None:
    """'6401-2345-6789' -> '640123456789'; None when what is left is not a tracking number."""
    number = re.sub(r"[\s-]", "", raw or "").upper()
    return number if TRACKING_NUMBER.fullmatch(number) else None
