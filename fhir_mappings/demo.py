"""Synthetic demonstration data: one small UK caseload that shows every form of keyworking.

Why this exists: DESIGN.md section 1 lists the forms keyworking takes and the ways it goes wrong.
A newcomer, a tester or a vendor evaluating the service needs to see each of them in a running
server, and nobody may load real people's records to do it. ``demo_resources(today)`` returns the
whole set as FHIR R4 JSON (plain dicts, as they would arrive on the wire) in dependency order:
Organization, Practitioner, PractitionerRole, Patient, RelatedPerson, CareTeam, CarePlan. Every
reference is relative (``Type/id``) and points at a resource earlier in the list, so a loader can
write them one at a time, or wrap them in a transaction Bundle.

One patient for each form:

==========================  ======================================================================
``pat-amara-okafor``        one key worker for one person
``pat-george-wilson``       one key worker (Sarah Whitfield) for several people; plan review overdue
``pat-siobhan-murphy``      two key workers sharing one person (key worker and co-key worker)
``pat-mohammed-iqbal``      a case team around one person, including his wife as family carer
``pat-eileen-brennan``      no key worker: only an accountable professional (a gap)
``pat-jamal-campbell``      key workers rotating yearly, the next starting the day after
``pat-margaret-evans``      the same key worker for over six years
``pat-harjit-kaur``         key worker on leave now, with a cover key worker for the whole leave
``pat-lewis-fraser``        key worker on leave now, with no cover; an activity nobody performs
``pat-winston-baptiste``    GP accountable since registration while social care key workers change
``pat-doreen-atkinson``     believes the district nurse is her key worker; it is someone else
``pat-yusuf-ali``           key workers assigned, but one colleague does all the paperwork
==========================  ======================================================================

Everything is made up: the town of Kirkbridge, its organisations, people and addresses, and the
ODS, GMC, HCPC and staff numbers. NHS numbers are in the 999 synthetic test range and pass the
modulus-11 check; telephone numbers are in Ofcom's ranges kept for drama (0113 496 0xxx,
07700 900xxx). Dates are offsets from ``today``, so "on leave now" and "review overdue" stay true
whenever the demo is loaded.

Only the standard library: this module is data, and stays out of the service's import graph.
"""

from __future__ import annotations

import copy
import datetime
from typing import Any, NamedTuple

__all__ = ["demo_resources"]

Resource = dict[str, Any]

_SCT = "http://snomed.info/sct"
_LOINC = "http://loinc.org"
_KEYWORKING_ROLE = "https://keyworker-fhir.org/fhir/CodeSystem/keyworking-role"
_ORGANIZATION_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
_RELATIONSHIP = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
_NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
_ODS_CODE = "https://fhir.nhs.uk/Id/ods-organization-code"
_GMC = "https://fhir.hl7.org.uk/Id/gmc-number"
_HCPC = "https://fhir.hl7.org.uk/Id/hcpc-number"
_STAFF = "https://keyworker-fhir.org/fhir/Id/staff-number"
_CARE_TEAM_ID = "https://keyworker-fhir.org/fhir/Id/care-team"
_CARE_PLAN_ID = "https://keyworker-fhir.org/fhir/Id/care-plan"

_ORGANIZATION_TYPES = {"prov": "Healthcare Provider", "govt": "Government"}
_PROFESSIONS = {
    "gp": ("62247001", "General practitioner"),
    "sw": ("106328005", "Social worker"),
    "ot": ("80546007", "Occupational therapist"),
    "dn": ("158997000", "District nurse"),
    "cn": ("224540001", "Community nurse"),
}
_ROLES = {
    "accountable-professional": "Accountable professional",
    "keyworker": "Key worker",
    "co-keyworker": "Co-key worker",
    "cover-keyworker": "Cover key worker",
    "case-team-member": "Case team member",
}
_CARE_PLAN_CATEGORY = ("734163000", "Care plan")
_CARE_TEAM_CATEGORY = ("LA28865-6", "Longitudinal care-coordination focused care team")


def _ago(years: float, days: int = 0) -> int:
    """An offset from today, in days: ``years`` and ``days`` into the past."""
    return -(round(years * 365.25) + days)


# --- Who is involved -------------------------------------------------------------------------


class _Organization(NamedTuple):
    id: str
    name: str
    kind: str  # organization-type code
    phone: str
    email: str
    line: str
    postcode: str
    ods_code: str | None = None


class _Practitioner(NamedTuple):
    prefix: str | None
    given: str
    family: str
    gender: str
    identifier_system: str
    identifier: str
    mobile: str

    @property
    def id(self) -> str:
        return f"prac-{self.given}-{self.family}".lower().replace("'", "")


class _PractitionerRole(NamedTuple):
    id: str
    practitioner: str
    organization: str
    profession: str  # key of _PROFESSIONS
    start: int
    end: int | None
    phone: str
    email: str


class _Leave(NamedTuple):
    role: str
    description: str
    start: int
    end: int


class _Patient(NamedTuple):
    id: str
    given: str
    family: str
    gender: str
    born: int
    nhs_number: str
    line: str
    postcode: str
    general_practitioner: str


class _RelatedPerson(NamedTuple):
    id: str
    patient: str
    given: str
    family: str
    gender: str
    relationship: str  # v3 RoleCode
    relationship_text: str
    mobile: str


_GP_PRACTICE = "org-beckside-medical-practice"
_SOCIAL_CARE = "org-kirkbridge-adult-social-care"
_COMMUNITY_TRUST = "org-kirkbridge-community-health"

# fmt: off
_ORGANIZATIONS = (
    _Organization(_GP_PRACTICE, "Beckside Medical Practice", "prov",
                  "0113 496 0100", "beckside.practice@nhs.net",
                  "Beckside Health Centre, 2 Mill Lane", "LS28 7AQ", ods_code="Y09921"),
    _Organization(_SOCIAL_CARE, "Kirkbridge Council Adult Social Care, North West Team", "govt",
                  "0113 496 0200", "asc.northwest@kirkbridge.gov.uk",
                  "Civic Hall, Market Street", "LS28 5BD"),
    _Organization(_COMMUNITY_TRUST,
                  "Kirkbridge Community Health NHS Trust, Neighbourhood Team North", "prov",
                  "0113 496 0300", "kch.neighbourhoodnorth@nhs.net",
                  "Calder House, Low Lane", "LS28 6HN"),
)

_PRACTITIONERS = (
    _Practitioner("Dr", "Helen", "Shaw", "female", _GMC, "7012345", "07700 900101"),
    _Practitioner("Dr", "Rajesh", "Patel", "male", _GMC, "6098765", "07700 900102"),
    _Practitioner(None, "Sarah", "Whitfield", "female", _STAFF, "KB10231", "07700 900201"),
    _Practitioner(None, "David", "Mensah", "male", _STAFF, "KB10487", "07700 900202"),
    _Practitioner(None, "Aisha", "Rahman", "female", _STAFF, "KB10552", "07700 900203"),
    _Practitioner(None, "Gareth", "Hughes", "male", _STAFF, "KB10119", "07700 900204"),
    _Practitioner(None, "Priya", "Sharma", "female", _STAFF, "KB10608", "07700 900205"),
    _Practitioner(None, "Bethany", "Clarke", "female", _HCPC, "OT70315", "07700 900206"),
    _Practitioner(None, "Tomasz", "Nowak", "male", _HCPC, "OT61842", "07700 900301"),
    _Practitioner(None, "Grace", "O'Connell", "female", _STAFF, "KCH20417", "07700 900302"),
    _Practitioner(None, "Owen", "Price", "male", _STAFF, "KCH20533", "07700 900303"),
)
# fmt: on

_HELEN = "prr-gp-helen-shaw"
_RAJESH = "prr-gp-rajesh-patel"
_SARAH = "prr-sw-sarah-whitfield"
_DAVID = "prr-sw-david-mensah"
_AISHA = "prr-sw-aisha-rahman"
_GARETH = "prr-sw-gareth-hughes"
_PRIYA = "prr-sw-priya-sharma"
_BETHANY = "prr-ot-bethany-clarke"
_TOMASZ_REABLEMENT = "prr-ot-tomasz-nowak-reablement"  # his council post before he joined the trust
_TOMASZ = "prr-ot-tomasz-nowak"
_GRACE = "prr-dn-grace-oconnell"
_OWEN = "prr-cn-owen-price"

# fmt: off
_PRACTITIONER_ROLES = (
    _PractitionerRole(_HELEN, "prac-helen-shaw", _GP_PRACTICE, "gp", _ago(21), None,
                      "0113 496 0101", "helen.shaw3@nhs.net"),
    _PractitionerRole(_RAJESH, "prac-rajesh-patel", _GP_PRACTICE, "gp", _ago(12), None,
                      "0113 496 0102", "rajesh.patel21@nhs.net"),
    _PractitionerRole(_SARAH, "prac-sarah-whitfield", _SOCIAL_CARE, "sw", _ago(14), None,
                      "0113 496 0211", "sarah.whitfield@kirkbridge.gov.uk"),
    _PractitionerRole(_DAVID, "prac-david-mensah", _SOCIAL_CARE, "sw", _ago(3), None,
                      "0113 496 0212", "david.mensah@kirkbridge.gov.uk"),
    _PractitionerRole(_AISHA, "prac-aisha-rahman", _SOCIAL_CARE, "sw", _ago(5), None,
                      "0113 496 0213", "aisha.rahman@kirkbridge.gov.uk"),
    _PractitionerRole(_GARETH, "prac-gareth-hughes", _SOCIAL_CARE, "sw", _ago(9), None,
                      "0113 496 0214", "gareth.hughes@kirkbridge.gov.uk"),
    _PractitionerRole(_PRIYA, "prac-priya-sharma", _SOCIAL_CARE, "sw", _ago(4), None,
                      "0113 496 0215", "priya.sharma@kirkbridge.gov.uk"),
    _PractitionerRole(_BETHANY, "prac-bethany-clarke", _SOCIAL_CARE, "ot", _ago(6), None,
                      "0113 496 0216", "bethany.clarke@kirkbridge.gov.uk"),
    _PractitionerRole(_TOMASZ_REABLEMENT, "prac-tomasz-nowak", _SOCIAL_CARE, "ot", _ago(8), -560,
                      "0113 496 0217", "tomasz.nowak@kirkbridge.gov.uk"),
    _PractitionerRole(_TOMASZ, "prac-tomasz-nowak", _COMMUNITY_TRUST, "ot", -559, None,
                      "0113 496 0313", "tomasz.nowak4@nhs.net"),
    _PractitionerRole(_GRACE, "prac-grace-oconnell", _COMMUNITY_TRUST, "dn", _ago(10), None,
                      "0113 496 0311", "grace.oconnell2@nhs.net"),
    _PractitionerRole(_OWEN, "prac-owen-price", _COMMUNITY_TRUST, "cn", _ago(4), None,
                      "0113 496 0312", "owen.price14@nhs.net"),
)

# Leave past, present and future: only Priya's and Bethany's leave covers today.
_LEAVE = (
    _Leave(_SARAH, "Annual leave", -200, -187),
    _Leave(_PRIYA, "Long-term leave", -30, 60),
    _Leave(_BETHANY, "Maternity leave", -45, 230),
    _Leave(_GARETH, "Annual leave", 20, 33),
)

_PATIENTS = (
    _Patient("pat-amara-okafor", "Amara", "Okafor", "female", _ago(34, 57), "9990001073",
             "Flat 3, 22 Millbank Court", "LS28 7DG", _HELEN),
    _Patient("pat-george-wilson", "George", "Wilson", "male", _ago(81, 140), "9990001146",
             "14 Beckside Road", "LS28 7AZ", _HELEN),
    _Patient("pat-siobhan-murphy", "Siobhan", "Murphy", "female", _ago(58, 12), "9990001219",
             "7 Weavers Row", "LS28 8JP", _RAJESH),
    _Patient("pat-mohammed-iqbal", "Mohammed", "Iqbal", "male", _ago(72, 300), "9990001286",
             "31 Calder Terrace", "LS28 6EL", _RAJESH),
    _Patient("pat-eileen-brennan", "Eileen", "Brennan", "female", _ago(88, 45), "9990001359",
             "2 Chapel Fold", "LS28 5LQ", _RAJESH),
    _Patient("pat-jamal-campbell", "Jamal", "Campbell", "male", _ago(27, 210), "9990001421",
             "Flat 12, Hollins House, Station Road", "LS28 6AR", _HELEN),
    _Patient("pat-margaret-evans", "Margaret", "Evans", "female", _ago(79, 88), "9990001499",
             "58 Aire View Avenue", "LS28 8BW", _RAJESH),
    _Patient("pat-harjit-kaur", "Harjit", "Kaur", "female", _ago(66, 19), "9990001561",
             "9 Tanners Yard", "LS28 7HT", _HELEN),
    _Patient("pat-lewis-fraser", "Lewis", "Fraser", "male", _ago(45, 230), "9990001634",
             "45 Moorside Crescent", "LS28 5PN", _RAJESH),
    _Patient("pat-winston-baptiste", "Winston", "Baptiste", "male", _ago(76, 161), "9990001707",
             "17 Low Green", "LS28 6QS", _HELEN),
    _Patient("pat-doreen-atkinson", "Doreen", "Atkinson", "female", _ago(90, 5), "9990001774",
             "6 Fountain Street", "LS28 7EF", _HELEN),
    _Patient("pat-yusuf-ali", "Yusuf", "Ali", "male", _ago(63, 99), "9990001847",
             "23 Bramley Close", "LS28 8NU", _RAJESH),
)

_NASREEN = "rp-nasreen-iqbal"

_RELATED_PEOPLE = (
    _RelatedPerson(_NASREEN, "pat-mohammed-iqbal", "Nasreen", "Iqbal", "female",
                   "WIFE", "Wife and main family carer", "07700 900401"),
    _RelatedPerson("rp-ngozi-okafor", "pat-amara-okafor", "Ngozi", "Okafor", "female",
                   "MTH", "Mother", "07700 900402"),
)
# fmt: on


# --- Who holds which keyworking role for whom ------------------------------------------------

_ACCOUNTABLE = "accountable-professional"
_KEYWORKER = "keyworker"
_CO_KEYWORKER = "co-keyworker"
_COVER = "cover-keyworker"
_MEMBER = "case-team-member"


class _Seat(NamedTuple):
    """One ``CareTeam.participant``: a role held by a member over a period."""

    role: str
    member: str
    start: int
    end: int | None = None


class _Team(NamedTuple):
    patient: str
    organization: str
    start: int
    note: str
    seats: tuple[_Seat, ...]


_ROTATION = -485  # Gareth's one-year term starts; Aisha's starts the day after it ends

# fmt: off
_TEAMS = (
    _Team("pat-amara-okafor", _SOCIAL_CARE, -200,
          "David Mensah is key worker for Amara and for nobody else.", (
              _Seat(_ACCOUNTABLE, _HELEN, -200),
              _Seat(_KEYWORKER, _DAVID, -200),
          )),
    _Team("pat-george-wilson", _SOCIAL_CARE, _ago(2, 40),
          "Sarah Whitfield is key worker for several people, George among them.", (
              _Seat(_ACCOUNTABLE, _HELEN, _ago(2, 40)),
              _Seat(_KEYWORKER, _SARAH, _ago(2, 40)),
          )),
    _Team("pat-siobhan-murphy", _SOCIAL_CARE, -900,
          "Two key workers share Siobhan: Aisha for social care, Owen for her nursing needs.", (
              _Seat(_ACCOUNTABLE, _RAJESH, -900),
              _Seat(_KEYWORKER, _AISHA, -900),
              _Seat(_CO_KEYWORKER, _OWEN, -300),
          )),
    _Team("pat-mohammed-iqbal", _SOCIAL_CARE, -75,
          "Case team formed at hospital discharge after a stroke; his wife is his carer.", (
              _Seat(_ACCOUNTABLE, _GARETH, -75),
              _Seat(_KEYWORKER, _GRACE, -75),
              _Seat(_MEMBER, _TOMASZ, -75),
              _Seat(_MEMBER, _OWEN, -75),
              _Seat(_MEMBER, _RAJESH, -75),
              _Seat(_MEMBER, _NASREEN, -75),
          )),
    _Team("pat-eileen-brennan", _GP_PRACTICE, -90,
          "Referred for a care needs assessment; no key worker allocated yet.", (
              _Seat(_ACCOUNTABLE, _RAJESH, -90),
          )),
    _Team("pat-jamal-campbell", _SOCIAL_CARE, _ROTATION,
          "Key workers rotate every year by team policy.", (
              _Seat(_ACCOUNTABLE, _HELEN, _ROTATION),
              _Seat(_KEYWORKER, _GARETH, _ROTATION, _ROTATION + 364),
              _Seat(_KEYWORKER, _AISHA, _ROTATION + 365, _ROTATION + 729),
          )),
    _Team("pat-margaret-evans", _SOCIAL_CARE, _ago(6, 200),
          "Sarah Whitfield has been Margaret's key worker for over six years.", (
              _Seat(_ACCOUNTABLE, _HELEN, _ago(6, 200), -1001),
              _Seat(_ACCOUNTABLE, _RAJESH, -1000),
              _Seat(_KEYWORKER, _SARAH, _ago(6, 200)),
          )),
    _Team("pat-harjit-kaur", _SOCIAL_CARE, -600,
          "Priya Sharma is on leave; Aisha Rahman is cover key worker until she returns.", (
              _Seat(_ACCOUNTABLE, _HELEN, -600),
              _Seat(_KEYWORKER, _PRIYA, -600),
              _Seat(_COVER, _AISHA, -30, 60),
          )),
    _Team("pat-lewis-fraser", _SOCIAL_CARE, -700,
          "Bethany Clarke is on maternity leave and no cover has been arranged.", (
              _Seat(_ACCOUNTABLE, _RAJESH, -700),
              _Seat(_KEYWORKER, _BETHANY, -700),
          )),
    _Team("pat-winston-baptiste", _GP_PRACTICE, _ago(19),
          "Dr Shaw has been accountable since Winston registered; key workers change.", (
              _Seat(_ACCOUNTABLE, _HELEN, _ago(19)),
              _Seat(_KEYWORKER, _TOMASZ_REABLEMENT, -1100, -601),
              _Seat(_KEYWORKER, _GARETH, -600),
          )),
    _Team("pat-doreen-atkinson", _SOCIAL_CARE, -1500,
          "Doreen calls Grace O'Connell, who dresses her legs daily, her key worker. "
          "Her key worker is Sarah Whitfield.", (
              _Seat(_ACCOUNTABLE, _HELEN, -1500),
              _Seat(_KEYWORKER, _SARAH, -1500),
              _Seat(_MEMBER, _GRACE, -400),
          )),
    _Team("pat-yusuf-ali", _COMMUNITY_TRUST, -500,
          "Tomasz and Owen are Yusuf's key workers; Grace O'Connell does all the paperwork.", (
              _Seat(_ACCOUNTABLE, _RAJESH, -500),
              _Seat(_KEYWORKER, _TOMASZ, -500),
              _Seat(_CO_KEYWORKER, _OWEN, -500),
              _Seat(_MEMBER, _GRACE, -500),
          )),
)
# fmt: on


# --- The personal plans --------------------------------------------------------------------

_REVIEW = "Annual personal plan review"
_APPOINTMENT = "Appointment"
_TASK = "Task"


class _Activity(NamedTuple):
    kind: str
    code: str
    status: str
    when: int | str  # an offset for scheduledPeriod.start, or a scheduledString
    performer: str | None
    description: str


class _Plan(NamedTuple):
    patient: str
    author: str
    start: int
    description: str
    activities: tuple[_Activity, ...]


# fmt: off
_PLANS = (
    _Plan("pat-amara-okafor", _DAVID, -200,
          "Amara wants to keep her flat, find paid work and see her mum every week.", (
              _Activity(_APPOINTMENT, _REVIEW, "scheduled", 165, _DAVID,
                        "Review with Amara, her mum and her support team."),
              _Activity(_APPOINTMENT, "Learning disability annual health check", "scheduled", 21,
                        _DAVID, "Book at Beckside; go with Amara and follow up any referrals."),
              _Activity(_TASK, "Easy read hospital passport", "in-progress",
                        "By the end of the month", _DAVID, "Write it with Amara."),
              _Activity(_TASK, "Advocacy at tenancy renewal meeting", "scheduled", 35, _DAVID,
                        "Help Amara put her views to the housing association."),
          )),
    _Plan("pat-george-wilson", _SARAH, _ago(2, 40),
          "George wants to stay at home with his wife Jean.", (
              _Activity(_APPOINTMENT, _REVIEW, "not-started", -40, _SARAH,
                        "Review with George and Jean; now overdue."),
              _Activity(_APPOINTMENT, "Memory clinic follow-up", "scheduled", 28, _SARAH,
                        "Book transport and remind Jean the day before."),
              _Activity(_TASK, "Carer's assessment for Jean Wilson", "not-started", 14, _SARAH,
                        "Refer Jean to the carers' centre."),
              _Activity(_TASK, "Attendance Allowance claim", "completed", -120, _SARAH,
                        "Claim made and awarded."),
          )),
    _Plan("pat-siobhan-murphy", _AISHA, -900,
          "Siobhan wants to keep working part time and to manage her own care.", (
              _Activity(_APPOINTMENT, _REVIEW, "scheduled", 90, _AISHA,
                        "Joint review with Aisha and Owen."),
              _Activity(_APPOINTMENT, "Neurology outpatient review", "scheduled", 45, _OWEN,
                        "Owen books transport and shares the clinic letter."),
              _Activity(_TASK, "Direct payment audit", "in-progress", "Every three months",
                        _AISHA, "Check the personal assistant's timesheets."),
              _Activity(_TASK, "Wheelchair service reassessment referral", "completed", -60,
                        _OWEN, "Referral accepted."),
              _Activity(_TASK, "Advocacy: care charge appeal", "in-progress", -10, _AISHA,
                        "Support Siobhan's appeal against the new charge."),
          )),
    _Plan("pat-mohammed-iqbal", _GRACE, -75,
          "Mohammed wants to walk to the mosque again and to give his wife a rest.", (
              _Activity(_APPOINTMENT, "Six-week post-discharge review", "scheduled", 10, _GRACE,
                        "Case team review at home with Nasreen."),
              _Activity(_APPOINTMENT, "Stroke outpatient follow-up", "scheduled", 30, _GRACE,
                        "Book hospital transport and an Urdu interpreter."),
              _Activity(_TASK, "Stair rail and bathing assessment", "in-progress", 5, _TOMASZ,
                        "Order the equipment after the visit."),
              _Activity(_TASK, "Carer's assessment for Nasreen Iqbal", "scheduled", 14, _GARETH,
                        "Offer respite options."),
              _Activity(_TASK, "Morning medicine prompts", "in-progress", "Daily", _NASREEN,
                        "Use the blister pack from the pharmacy."),
          )),
    _Plan("pat-jamal-campbell", _AISHA, _ROTATION,
          "Jamal wants to finish his college course and to live more independently.", (
              _Activity(_APPOINTMENT, _REVIEW, "scheduled", 200, _AISHA,
                        "Review before the next key worker rotation."),
              _Activity(_APPOINTMENT, "Community mental health team appointment", "scheduled",
                        12, _AISHA, "Remind Jamal the day before by text."),
              _Activity(_TASK, "Handover summary for the new key worker", "completed", -120,
                        _GARETH, "Written at rotation."),
              _Activity(_TASK, "Advocacy: college course enrolment", "in-progress", 7, _AISHA,
                        "Ask the college for reasonable adjustments."),
          )),
    _Plan("pat-margaret-evans", _SARAH, _ago(6, 200),
          "Margaret wants to stay in the home she has lived in for fifty years.", (
              _Activity(_APPOINTMENT, _REVIEW, "scheduled", 150, _SARAH,
                        "Review with Margaret and her nephew."),
              _Activity(_APPOINTMENT, "Diabetic eye screening", "scheduled", 40, _SARAH,
                        "Book it and arrange a taxi."),
              _Activity(_TASK, "Blue Badge renewal", "not-started", 20, _SARAH,
                        "Renew online before it expires."),
              _Activity(_APPOINTMENT, "Podiatry", "completed", -30, _SARAH,
                        "Attended; next in six months."),
          )),
    _Plan("pat-harjit-kaur", _PRIYA, -600,
          "Harjit wants to move to a ground-floor flat near her daughter.", (
              _Activity(_APPOINTMENT, _REVIEW, "scheduled", 100, _PRIYA,
                        "Review when Priya is back from leave."),
              _Activity(_APPOINTMENT, "Cardiology outpatient appointment", "scheduled", 10,
                        _AISHA, "Cover key worker confirms transport."),
              _Activity(_TASK, "Pharmacy medicine review follow-up", "in-progress", 3, _AISHA,
                        "Check the new dosette box is working."),
              _Activity(_TASK, "Housing transfer application", "not-started",
                        "When Priya returns", _PRIYA, "Gather the medical evidence."),
          )),
    _Plan("pat-lewis-fraser", _BETHANY, -700,
          "Lewis wants to go back to work and to drive again.", (
              _Activity(_APPOINTMENT, _REVIEW, "scheduled", 130, _BETHANY,
                        "Review after Bethany's return."),
              _Activity(_APPOINTMENT, "Spinal injuries unit annual review", "not-started", 25,
                        None, "Nobody has booked it."),
              _Activity(_TASK, "Wheelchair repair referral", "in-progress", -50, _BETHANY,
                        "Started before Bethany's leave."),
          )),
    _Plan("pat-winston-baptiste", _GARETH, -600,
          "Winston wants to keep going to the lunch club and to manage his diabetes.", (
              _Activity(_APPOINTMENT, _REVIEW, "scheduled", 80, _GARETH,
                        "Review with Winston and his son."),
              _Activity(_APPOINTMENT, "Annual diabetes review", "scheduled", 18, _GARETH,
                        "Book at Beckside and follow up the results."),
              _Activity(_TASK, "Lunch club place", "in-progress", 14, _GARETH,
                        "Arrange transport twice a week."),
              _Activity(_TASK, "Continuing healthcare checklist", "completed", -300, _GARETH,
                        "Not eligible; copy sent to Winston."),
          )),
    _Plan("pat-doreen-atkinson", _SARAH, -1500,
          "Doreen wants her legs to heal and to stay independent.", (
              _Activity(_APPOINTMENT, _REVIEW, "scheduled", 30, _SARAH,
                        "Review with Doreen and her son."),
              _Activity(_APPOINTMENT, "Leg ulcer dressings", "in-progress", "Daily home visits",
                        _GRACE, "District nursing visits."),
              _Activity(_TASK, "Explain who her key worker is", "scheduled", 7, _SARAH,
                        "Leave an easy read card with Sarah's photo and number."),
              _Activity(_TASK, "Falls prevention referral", "completed", -90, _SARAH,
                        "Assessed; pendant alarm fitted."),
          )),
    _Plan("pat-yusuf-ali", _TOMASZ, -500,
          "Yusuf wants to breathe more easily and to get out to the shops.", (
              _Activity(_APPOINTMENT, _REVIEW, "scheduled", 120, _TOMASZ,
                        "Review with Yusuf and his key workers."),
              _Activity(_APPOINTMENT, "Heart failure clinic", "scheduled", 16, _OWEN,
                        "Book it and follow up any medication changes."),
              _Activity(_TASK, "Personal health budget paperwork", "in-progress", 9, _GRACE,
                        "Done by Grace, not by his key workers."),
              _Activity(_TASK, "Continuing healthcare checklist", "completed", -200, _GRACE,
                        "Done by Grace."),
              _Activity(_TASK, "Blue Badge application", "not-started", 10, _GRACE,
                        "Done by Grace."),
          )),
)
# fmt: on


# --- Building the resources --------------------------------------------------------------------


class _Demo:
    """The resources built so far, in order, and references to them."""

    def __init__(self, today: datetime.date) -> None:
        self.today = today
        self.resources: list[Resource] = []
        self._by_id: dict[str, Resource] = {}
        self._displays: dict[str, str] = {}

    def add(self, resource: Resource, display: str) -> None:
        self.resources.append(resource)
        self._by_id[resource["id"]] = resource
        self._displays[resource["id"]] = display

    def get(self, resource_id: str) -> Resource:
        """A resource already built: a dangling or out-of-order reference fails here."""
        return self._by_id[resource_id]

    def ref(self, resource_id: str) -> dict[str, str]:
        resource_type = self.get(resource_id)["resourceType"]
        return {
            "reference": f"{resource_type}/{resource_id}",
            "display": self._displays[resource_id],
        }

    def day(self, offset: int) -> str:
        return (self.today + datetime.timedelta(days=offset)).isoformat()

    def period(self, start: int, end: int | None = None) -> dict[str, str]:
        period = {"start": self.day(start)}
        if end is not None:
            period["end"] = self.day(end)
        return period


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _telecom(phone: str, email: str | None = None, use: str = "work") -> list[dict[str, str]]:
    points = [{"system": "phone", "value": phone, "use": use}]
    if email is not None:
        points.append({"system": "email", "value": email, "use": "work"})
    return points


def _address(use: str, line: str, postcode: str) -> dict[str, Any]:
    return {
        "use": use,
        "line": line.split(", "),
        "city": "Kirkbridge",
        "district": "West Yorkshire",
        "postalCode": postcode,
        "country": "GB",
    }


def _name(given: str, family: str, prefix: str | None = None) -> dict[str, Any]:
    name: dict[str, Any] = {"use": "official", "family": family, "given": [given]}
    if prefix is not None:
        name["prefix"] = [prefix]
    return name


def _add_organization(demo: _Demo, org: _Organization) -> None:
    identifiers = [{"system": _ODS_CODE, "value": org.ods_code}] if org.ods_code else []
    resource: Resource = {
        "resourceType": "Organization",
        "id": org.id,
        "active": True,
        "type": [_concept(_ORGANIZATION_TYPE, org.kind, _ORGANIZATION_TYPES[org.kind])],
        "name": org.name,
        "telecom": _telecom(org.phone, org.email),
        "address": [_address("work", org.line, org.postcode)],
    }
    if identifiers:
        resource["identifier"] = identifiers
    demo.add(resource, org.name)


def _add_practitioner(demo: _Demo, person: _Practitioner) -> None:
    resource: Resource = {
        "resourceType": "Practitioner",
        "id": person.id,
        "identifier": [{"system": person.identifier_system, "value": person.identifier}],
        "active": True,
        "name": [_name(person.given, person.family, person.prefix)],
        "telecom": _telecom(person.mobile, use="mobile"),
        "gender": person.gender,
    }
    display = " ".join(part for part in (person.prefix, person.given, person.family) if part)
    demo.add(resource, display)


def _add_practitioner_role(demo: _Demo, role: _PractitionerRole) -> None:
    code, profession = _PROFESSIONS[role.profession]
    practitioner = demo.ref(role.practitioner)
    resource: Resource = {
        "resourceType": "PractitionerRole",
        "id": role.id,
        "active": role.end is None or role.end >= 0,
        "period": demo.period(role.start, role.end),
        "practitioner": practitioner,
        "organization": demo.ref(role.organization),
        "code": [_concept(_SCT, code, profession)],
        "telecom": _telecom(role.phone, role.email),
    }
    leave = [
        {"description": absence.description, "during": demo.period(absence.start, absence.end)}
        for absence in _LEAVE
        if absence.role == role.id
    ]
    if leave:
        resource["notAvailable"] = leave
    demo.add(resource, f"{practitioner['display']} ({profession})")


def _add_patient(demo: _Demo, patient: _Patient) -> None:
    resource: Resource = {
        "resourceType": "Patient",
        "id": patient.id,
        "identifier": [{"system": _NHS_NUMBER, "value": patient.nhs_number}],
        "active": True,
        "name": [_name(patient.given, patient.family)],
        "gender": patient.gender,
        "birthDate": demo.day(patient.born),
        "address": [_address("home", patient.line, patient.postcode)],
        "generalPractitioner": [demo.ref(patient.general_practitioner)],
    }
    demo.add(resource, f"{patient.given} {patient.family}")


def _add_related_person(demo: _Demo, person: _RelatedPerson) -> None:
    patient = demo.get(person.patient)
    relationship = _concept(_RELATIONSHIP, person.relationship, person.relationship_text)
    resource: Resource = {
        "resourceType": "RelatedPerson",
        "id": person.id,
        "active": True,
        "patient": demo.ref(person.patient),
        "relationship": [relationship],
        "name": [_name(person.given, person.family)],
        "telecom": _telecom(person.mobile, use="mobile"),
        "gender": person.gender,
        "address": copy.deepcopy(patient["address"]),
    }
    demo.add(resource, f"{person.given} {person.family} ({person.relationship_text.lower()})")


def _participant(demo: _Demo, seat: _Seat) -> Resource:
    member = demo.get(seat.member)
    role = _concept(_KEYWORKING_ROLE, seat.role, _ROLES[seat.role])
    role["coding"] += [
        dict(coding) for concept in member.get("code", []) for coding in concept["coding"]
    ]
    # No onBehalfOf: R4 allows it only for a Practitioner member (ctm-1), and a
    # PractitionerRole member already names its organisation; the team's is its
    # managingOrganization.
    return {
        "role": [role],
        "member": demo.ref(seat.member),
        "period": demo.period(seat.start, seat.end),
    }


def _add_care_team(demo: _Demo, number: int, team: _Team) -> None:
    subject = demo.ref(team.patient)
    resource: Resource = {
        "resourceType": "CareTeam",
        "id": "ct-" + team.patient.removeprefix("pat-"),
        "identifier": [{"system": _CARE_TEAM_ID, "value": f"CT-{number:04d}"}],
        "status": "active",
        "category": [_concept(_LOINC, *_CARE_TEAM_CATEGORY)],
        "name": f"Keyworking arrangement for {subject['display']}",
        "subject": subject,
        "period": demo.period(team.start),
        "participant": [_participant(demo, seat) for seat in team.seats],
        "managingOrganization": [demo.ref(team.organization)],
        "note": [{"text": team.note}],
    }
    demo.add(resource, resource["name"])


def _activity(demo: _Demo, activity: _Activity) -> Resource:
    detail: Resource = {"kind": activity.kind, "code": {"text": activity.code}}
    detail["status"] = activity.status
    if isinstance(activity.when, str):
        detail["scheduledString"] = activity.when
    else:
        detail["scheduledPeriod"] = demo.period(activity.when)
    if activity.performer is not None:
        detail["performer"] = [demo.ref(activity.performer)]
    detail["description"] = activity.description
    return {"detail": detail}


def _add_care_plan(demo: _Demo, number: int, plan: _Plan) -> None:
    subject = demo.ref(plan.patient)
    resource: Resource = {
        "resourceType": "CarePlan",
        "id": "cp-" + plan.patient.removeprefix("pat-"),
        "identifier": [{"system": _CARE_PLAN_ID, "value": f"CP-{number:04d}"}],
        "status": "active",
        "intent": "plan",
        "category": [_concept(_SCT, *_CARE_PLAN_CATEGORY)],
        "title": f"Personal plan for {subject['display']}",
        "description": plan.description,
        "subject": subject,
        "period": demo.period(plan.start),
        "author": demo.ref(plan.author),
        "careTeam": [demo.ref("ct-" + plan.patient.removeprefix("pat-"))],
        "activity": [_activity(demo, activity) for activity in plan.activities],
    }
    demo.add(resource, resource["title"])


def demo_resources(today: datetime.date) -> list[dict[str, Any]]:
    """The demonstration caseload as FHIR R4 JSON resources, dated relative to ``today``.

    Returned in dependency order (Organization, Practitioner, PractitionerRole, Patient,
    RelatedPerson, CareTeam, CarePlan): each reference points at a resource earlier in the list.
    Each call builds fresh dicts, so callers may change what they get.
    """
    demo = _Demo(today)
    for organization in _ORGANIZATIONS:
        _add_organization(demo, organization)
    for practitioner in _PRACTITIONERS:
        _add_practitioner(demo, practitioner)
    for role in _PRACTITIONER_ROLES:
        _add_practitioner_role(demo, role)
    for patient in _PATIENTS:
        _add_patient(demo, patient)
    for related_person in _RELATED_PEOPLE:
        _add_related_person(demo, related_person)
    for number, team in enumerate(_TEAMS, start=1):
        _add_care_team(demo, number, team)
    for number, plan in enumerate(_PLANS, start=1):
        _add_care_plan(demo, number, plan)
    return demo.resources
