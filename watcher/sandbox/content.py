"""Realistic prose shared by the seed data: names, teams, instructions and function tools."""

from __future__ import annotations

from watcher.sandbox.dice import Dice, rotated

ASSISTANT_NAMES = (
    "Billing Bot", "Support Triage", "Refund Helper", "Onboarding Guide", "Invoice Explainer",
    "Churn Rescue", "Order Tracker", "Returns Desk", "Policy Checker", "Sales Qualifier",
    "Knowledge Base Search", "Contract Reviewer", "Shipping Assistant", "Account Recovery",
    "Tax Helper", "Warranty Claims", "HR Benefits Helper", "IT Helpdesk", "Release Notes Writer",
    "Data Analyst", "Translation Desk", "Escalation Router", "Fraud Screener",
    "Subscription Manager", "Feedback Summarizer", "Meeting Notes", "Compliance Reviewer",
    "Pricing Advisor", "Partner Support", "Store Locator",
)
AGENT_NAMES = (
    "Research Agent", "Incident Commander", "Code Review Agent", "Lead Enrichment",
    "Travel Planner", "Vendor Due Diligence", "Docs Maintainer", "Market Scanner",
    "Procurement Agent", "QA Triage Agent", "Security Watch", "Campaign Planner",
    "Inventory Forecaster", "Legal Intake", "Recruiting Screener", "Renewal Agent",
    "Support Deflection", "Data Quality Agent", "Release Captain", "Customer Health Agent",
)
TEAMS = ("billing", "support", "growth", "platform", "finance", "legal", "ops", "sales")
OWNERS = ("amara.okafor", "li.wei", "jonas.berg", "priya.nair", "diego.ramos", "sofia.rossi",
           "kenji.sato", "hannah.cole")
ASSISTANT_MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o3-mini")
AGENT_MODELS = ("gpt-5", "gpt-5-mini", "gpt-5.1", "gpt-4.1")
PRODUCTS = ("Acme Cloud", "Acme Payments", "Acme Storefront", "Acme Insights")

PARAGRAPHS = (
    "You are {name}, an assistant operated by the {team} team for customers of {product}. "
    "Answer in the customer's language, keep a calm and precise tone, and never guess: when "
    "you are missing a fact, call the matching tool or ask one short clarifying question.",
    "Scope. You handle questions about accounts, invoices, orders and subscriptions of "
    "{product}. Anything about legal disputes, security incidents or personal data requests "
    "goes to a human: call escalate_to_human with a one-line reason and tell the customer "
    "that a specialist will reply by email within one business day.",
    "Identity. Before you reveal or change anything tied to an account, confirm the "
    "customer's identity with the email address on file and the last four digits of the "
    "payment method. Never read out full card numbers, passwords or one-time codes, even if "
    "the customer insists or claims to be an administrator.",
    "Refunds. Orders delivered less than 30 days ago may be refunded in full. Between 30 and "
    "90 days, offer store credit for the full amount or a refund of 50 percent. Beyond 90 "
    "days, explain the policy and offer to open a ticket. Refunds above 500 USD always need "
    "approval from {owner} or another member of the {team} team.",
    "Formatting. Use short paragraphs and at most one bulleted list per answer. Quote "
    "amounts with their currency code, dates as YYYY-MM-DD, and order numbers exactly as the "
    "tools return them. Do not use emoji, do not apologise more than once, and do not "
    "promise delivery dates that a tool did not confirm.",
    "Tools. Prefer a single precise tool call over several broad ones. When a tool returns "
    "an error, retry once with corrected arguments, then tell the customer plainly what "
    "could not be done. Never invent tool results and never show raw JSON to the customer.",
    "Tone. Customers who write in anger get one sentence of acknowledgement, then facts. "
    "Customers who mention a deadline get the fastest option first. If a customer asks for "
    "a manager, do not argue: offer the escalation path and record the request in a ticket.",
    "Knowledge. The help center articles attached through file search are authoritative "
    "for {product}. When an article and a tool disagree, trust the tool and flag the "
    "article in the ticket notes with the tag kb-outdated so the {team} team can fix it.",
    "Privacy. Treat everything the customer shares as confidential. Do not repeat personal "
    "data back unless it is needed to complete the task, do not store it in notes, and "
    "remind the customer not to paste passwords or full card numbers into the chat.",
    "Closing. End every resolved conversation by summarising what was done in one "
    "sentence, giving the ticket or order number, and asking whether anything else is "
    "needed. Unresolved conversations end with the next step and who owns it.",
    "Metrics. Your answers are reviewed weekly by {owner}. Reviewers look at first-contact "
    "resolution, correct use of the refund policy, and whether escalations carried enough "
    "context for a human to act without asking the customer again.",
    "Languages. Reply in English, French, German, Spanish, Portuguese, Italian or Japanese. "
    "For other languages, answer in English, say so politely, and offer the translation "
    "tool if the customer prefers a machine translation of your answer.",
)
RULES = (
    "Verify the order status with a tool before quoting any delivery window.",
    "Never change a subscription plan without explicit confirmation in the same turn.",
    "Apply promotional credits only when the campaign code is still active.",
    "Route chargeback notices to the finance queue within the same conversation.",
    "Do not disclose internal ticket notes, reviewer comments or agent names.",
    "Convert amounts with the rate the billing tool returns, never a remembered one.",
    "Offer a callback when a customer has written more than three times about one issue.",
    "Mark conversations that mention a regulator or a lawyer for legal review.",
    "Treat duplicate charges as urgent and open a priority-high ticket immediately.",
    "When a tool times out twice, stop retrying and escalate with the tool name.",
)


def _fn(name: str, description: str, properties: dict, required: tuple = ()) -> dict:
    """One function definition: name, description and a JSON-schema object."""
    return {"name": name, "description": description,
            "parameters": {"type": "object", "properties": properties, "required": list(required),
                           "additionalProperties": False}}


STR, INT, BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
FUNCTIONS = (
    _fn("lookup_invoice", "Fetch an invoice with its status and, optionally, its line items.",
        {"invoice_id": {"type": "string", "description": "Invoice number, e.g. INV-2024-0042"},
         "include_line_items": BOOL}, ("invoice_id",)),
    _fn("issue_refund", "Refund all or part of an order to the original payment method.",
        {"order_id": STR, "amount_cents": {"type": "integer", "minimum": 1},
         "reason": {"type": "string", "enum": ["damaged", "late", "not_as_described", "goodwill"]}},
        ("order_id", "amount_cents", "reason")),
    _fn("create_ticket", "Open a support ticket for follow-up by a human.",
        {"subject": STR, "body": STR,
         "priority": {"type": "string", "enum": ["low", "normal", "high", "urgent"]},
         "tags": {"type": "array", "items": STR}}, ("subject", "body", "priority")),
    _fn("search_orders", "Find a customer's orders by email and status.",
        {"customer_email": {"type": "string", "format": "email"},
         "status": {"type": "string", "enum": ["open", "shipped", "delivered", "cancelled"]},
         "limit": {"type": "integer", "minimum": 1, "maximum": 50}}, ("customer_email",)),
    _fn("get_customer", "Look up a customer profile by id.", {"customer_id": STR}, ("customer_id",)),
    _fn("escalate_to_human", "Hand the conversation to a human specialist.",
        {"reason": STR, "queue": {"type": "string", "enum": ["billing", "legal", "security", "general"]}},
        ("reason", "queue")),
    _fn("check_shipment", "Track a parcel with its carrier.",
        {"tracking_number": STR, "carrier": {"type": "string", "enum": ["ups", "dhl", "fedex", "usps"]}},
        ("tracking_number",)),
    _fn("update_subscription", "Change the plan of a subscription.",
        {"subscription_id": STR, "plan": {"type": "string", "enum": ["starter", "team", "business"]},
         "prorate": BOOL}, ("subscription_id", "plan")),
    _fn("query_metrics", "Return a daily time series of a business metric.",
        {"metric": {"type": "string", "enum": ["mrr", "churn", "signups", "tickets"]},
         "start_date": {"type": "string", "format": "date"},
         "end_date": {"type": "string", "format": "date"}}, ("metric", "start_date", "end_date")),
    _fn("translate_text", "Translate a text into a target language.",
        {"text": STR, "target_language": {"type": "string", "description": "ISO 639-1 code"}},
        ("text", "target_language")),
    _fn("schedule_callback", "Book a phone callback window with the support team.",
        {"phone": STR, "window_start": {"type": "string", "format": "date-time"},
         "duration_minutes": INT}, ("phone", "window_start")),
    _fn("fetch_policy", "Return the current text of an internal policy.",
        {"policy_id": STR, "version": INT}, ("policy_id",)),
)


def instructions(dice: Dice, fields: dict, long: bool) -> str:
    """Multi-paragraph instructions; long ones grow an appendix of numbered rules (5-20k chars)."""
    rest = PARAGRAPHS[1:]
    paragraphs = (PARAGRAPHS[0],) + rotated(rest, dice.below(len(rest)), dice.between(4, 8))
    text = "\n\n".join(p.format_map(fields) for p in paragraphs)
    if not long:
        return text
    target, parts, rule = dice.between(5_000, 20_000), [text, "\n\nAppendix: operating rules"], 0
    size, offset = len(text), dice.below(1_000)
    while size < target:  # rules cycle from a random offset: one draw, not two per line
        rule += 1
        policy = 100 + (offset * 7 + rule * 13) % 900
        line = f"\n{rule}. {RULES[(offset + rule) % len(RULES)]} ({fields['team']} policy {policy})"
        parts.append(line)
        size += len(line)
    return "".join(parts)


def people(dice: Dice, name: str) -> dict:
    """The placeholders of an object's instructions: its name, team, owner and product."""
    return {"name": name, "team": dice.pick(TEAMS), "owner": dice.pick(OWNERS),
            "product": dice.pick(PRODUCTS)}


def is_long(dice: Dice, index: int) -> bool:
    """A few objects carry long instructions; index 3 always does, so small seeds have one."""
    return index == 3 or dice.chance(0.02)
