"""Build data/support/intents.jsonl: the hand-written seed lines plus variants of templates written here.

Every sentence pattern below was written for Keel (none is copied from a public corpus). A template is expanded
with slot values (orders, devices, plans, months...), optional context sentences before it (so the intent sits in
the second sentence), politeness or anger around it, and typing noise (dropped, doubled or swapped letters,
lower case, no punctuation, chat shorthand). Whole templates, not single variants, are assigned to a split
(train 70 %, dev 15 %, test 15 %, by a hash of the template), so dev and test measure phrasings the head never
saw in training. The label guide is data/support/LABELS.md. Deterministic: same script, same file.

    python scripts/make_support_intents.py            # rewrites data/support/intents.jsonl
    python scripts/make_support_intents.py --check    # exits 1 if the file is not what the script makes
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.support._data import (CALIBRATION_FILE, EXTERNAL_SETS, SCORED_EXTERNAL_SETS,  # noqa: E402
                                load_articles)

OUT = ROOT / "data" / "support" / "intents.jsonl"
SEED = ROOT / "data" / "support" / "intents_seed.jsonl"
# Written by other writers, each from briefs of their own (the `*_personas.md` beside each file), for training only:
# (file, who wrote it). Their lines all go to `train`; dev and test stay the templated hold-out.
EXTRA_TRAIN = [(ROOT / "data" / "support" / name, writer) for name, writer in (
    ("intents_extra_train.jsonl", "second writer"), ("intents_train_w4.jsonl", "fourth writer"),
    ("intents_train_w5.jsonl", "fifth writer"),
    ("intents_train_w6.jsonl", "sixth writer"), ("intents_train_w7.jsonl", "seventh writer"),
    ("intents_train_w8.jsonl", "eighth writer"), ("intents_train_w9.jsonl", "ninth writer"),
    ("intents_train_w10.jsonl", "tenth writer"), ("intents_train_w11.jsonl", "eleventh writer"))]
# The sets that score or calibrate the classifier: a training line that happens to say the same thing as one of
# their messages ("hello", "ok", "refund") is left out, so no message they hold is ever trained on.
EVALUATED = (*SCORED_EXTERNAL_SETS.values(), *EXTERNAL_SETS.values(), CALIBRATION_FILE)
VARIANTS_PER_TEMPLATE = 7

SLOTS = {
    "item": ["camera", "outdoor camera", "thermostat", "doorbell", "hub", "motion sensors", "sensor pack",
             "video doorbell", "smart thermostat", "indoor cam", "starter kit", "chime"],
    "order": ["ORD-50012", "ORD-50007", "order 50021", "#50003", "ORD50018", "order number 50044", "50031",
              "ord-50009", "ORD-50026", "order #50015"],
    "plan": ["Basic", "Plus", "Pro", "Business", "plus", "pro", "basic", "the Pro plan", "the plus tier"],
    "invoice": ["INV-2026-0042", "INV-2026-0007", "invoice INV-2026-0031", "INV20260013", "inv-2026-0019",
                "invoice 2026-0024"],
    "month": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December", "last month", "this month"],
    "days": ["3 days", "a week", "two weeks", "10 days", "5 days", "nearly a month", "over a week", "four days"],
    "amount": ["$9.99", "$29", "4.99", "$149", "€59", "£69", "$19.98", "129 dollars"],
    "country": ["Canada", "Mexico", "the UK", "Germany", "Australia", "Ireland", "France", "Japan", "Norway"],
    "person": ["my wife", "my husband", "my son", "my daughter", "my roommate", "my mom", "my dad",
               "my partner", "a guest", "my landlord", "my dog sitter"],
    "feature": ["motion zones", "person detection", "night vision", "two-way talk", "eco mode",
                "package detection", "geofencing", "privacy mode", "energy reports", "activity alerts"],
    "assistant": ["Alexa", "Google Home", "Apple Home", "HomeKit", "Siri", "SmartThings"],
    "city": ["Paris", "Tokyo", "Chicago", "Lagos", "Lima", "Cairo", "Oslo", "Mumbai", "Denver", "Seoul"],
    "food": ["an avocado", "a banana", "a slice of pizza", "an egg", "a bagel", "a cup of rice", "a mango",
             "a glass of milk", "a croissant"],
    "animal": ["an octopus", "a giraffe", "a cat", "a blue whale", "a honeybee", "a crocodile", "an owl"],
    "topic": ["black holes", "photosynthesis", "the French revolution", "inflation", "volcanoes",
              "the stock market", "DNA", "the Roman empire", "climate change", "electric cars", "jazz",
              "the pyramids", "gravity", "vaccines", "the internet"],
    "thing": ["a kite", "a birdhouse", "paper planes", "a bookshelf", "a website", "candles", "soap",
              "a podcast", "a garden bed", "a compost bin"],
    "dish": ["lasagna", "pancakes", "banana bread", "chicken curry", "guacamole", "ramen", "chili",
             "apple pie", "tacos", "risotto"],
    "company": ["Netflix", "my bank", "Amazon", "Spotify", "my phone carrier", "Uber", "my gym", "Disney+"],
}

# --- templates per label -------------------------------------------------------------------------------------------
# FAQ: general questions about products, policies, prices, shipping, set-up and how-to — nothing about the
# customer's own order, invoice or account state.
FAQ = """
how do i reset my password
how do I reset my password if I forgot it
what's the process to change a password on halden
how do you reset the password on the app
how do I turn on two-factor authentication
do you support passkeys or an authenticator app
what is your refund policy
how do refunds work
how long does a refund usually take to reach my card
do you refund shipping costs when something is returned
what's the return policy for opened items
can I return a {item} after I installed it
how many days do I have to return something
how do returns work if I bought it as a gift
what payment methods do you accept
do you take PayPal
can I pay with Apple Pay or Google Pay
do you accept prepaid cards or gift cards as payment
is there a fee for paying by card
are there any fees for cancelling early
is there a cancellation fee
what happens to my recordings if I cancel
how does billing work when you switch plans in the middle of a month
do you prorate when I upgrade
when are subscriptions charged, start or end of the month
how much does the {plan} plan cost
what's the price of {plan} per month
what's the difference between Plus and Pro
which plan do I need for more than two cameras
what does {plan} include
is there a free trial of Pro
do you offer a student discount
do you price match other stores
how do gift cards work
do you ship to {country}
how long does standard shipping take
do you ship on weekends
which carriers do you use for delivery
how much is express shipping
do you charge customs fees for international orders
how long is the warranty on the {item}
what does the warranty cover
how do I make a warranty claim in general
is water damage covered by the warranty
how do I set up the {item}
how do I install the thermostat
can I install the thermostat without a C-wire
does the {item} work with {assistant}
how do I connect the hub to 5 GHz wifi
how do I factory reset the hub
my camera shows offline, how do I troubleshoot it
what should I do when the camera keeps going offline
how do I update the firmware
how do I set a heating schedule
what is eco mode
how do I turn on {feature}
does the outdoor camera work in the rain
what temperature range can the outdoor camera handle
does the {item} need batteries
how do I share access with {person}
can I give {person} access to the cameras
how many homes can I add on one account
is my video encrypted
do you sell my data
where is my video stored
how do I delete my account and all my data, in general
what are your support hours
how can I reach a person at support
is the app on Android
what phones does the app run on
which browsers does the web dashboard support
can I pause a subscription while I travel
how do I cancel a subscription, what are the steps
how do I cancel an order before it ships, is that possible
can orders be changed after they're placed
what's included in the box with the starter kit
where do I find the serial number on a device
how do I get a receipt for a gift purchase
how long is video history kept on {plan}
does {plan} include {feature}
do prices go up for existing customers
is there a business plan for offices
what does the red light on the hub mean
why does the thermostat say low battery
how do motion alerts work
can I use the doorbell without a chime
what wifi speed do the cameras need
do you have a mobile app for tablets
can I move devices to a new owner if I sell my house
how do I verify my email address, what are the steps
what happens if I don't verify my email
do you offer installation service
I was wondering whether the {item} can be used without a subscription
is it possible to pay yearly instead of monthly
do you charge extra for more than one home
my friend says you refund within 14 days, is that true
what is the policy if a package gets lost in the mail
how long do I have to wait for a replacement under warranty usually
do I get charged if I downgrade mid cycle
i was wondering how the free trial works and whether you charge at the end
is there any way to get a discount on a second {item}
are there fees for paying late
what's the maximum number of cameras per home
can the hub run on batteries during a power cut
how does person detection work
""".strip().splitlines()

# ACCOUNT_ACTION: do or look up something on the customer's own account, orders, plan or login.
ACCOUNT = """
reset my password
please reset the password on my account
i cant log in, reset my password
send me a password reset link
cancel my order
cancel order {order}
please cancel my order for the {item}
I changed my mind, cancel the {item} I ordered
cancel my subscription
please cancel my plan at the end of the month
where is my order
where is my order {order}
wheres my {item}
track my package
track order {order}
has my {item} shipped yet
when will my {item} arrive
what's the status of {order}
my order says delivered but it's not here, can you check it
I ordered a {item} {days} ago and it still hasn't come
can you look up my order
show my recent orders
I don't know what to do to see when my {item} arrives
how do I see where my order {order} is right now
change my plan to {plan}
upgrade me to {plan}
downgrade my account to {plan}
switch me to the {plan} plan
I want to move to {plan}
please put my account on {plan}
I'd like more cameras so upgrade my subscription
what plan am I on
which plan am I paying for right now
is my account active
check my account status
can you look up my account
what email is on my account
update the email address on my account
change my shipping address for order {order}
add {person} to my account
remove {person} from my account
resend my verification email
I never got the verification email
my verification link expired, send a new one
verify my email please
the activation email never arrived, can you send it again
turn off two factor on my account, I lost my phone
unlock my account
my account is locked, can you unlock it
delete my account
close my account please
pause my subscription for two months
reactivate my subscription
what devices are registered on my account
register my new {item} to my account
change the name on my account
when did I open my account
can you check if my account is suspended
I need to change the delivery address on my order
can you resend the tracking link for {order}
return label for my {item} please
start a return for my {item}
I want to return the {item} I ordered
file a warranty claim for my {item}
i need to get into my account but forgot the password, can you reset it
can you check on the {item} I bought, it's been {days}
my tracking hasn't updated in {days}, where is it
could you tell me if my account email is verified
I'd like to stop my subscription, please cancel it
the {item} order was a mistake, I don't want it anymore
can you make me an admin on our business account
I need to change my phone number on the account
look up my account, I think I have two
is my order {order} going to arrive before the weekend
""".strip().splitlines()

# BILLING: the customer's own charges, invoices, payments, balance, refunds and disputes.
BILLING = """
refund my order
refund my order {order}
I want a refund for the {item}
please refund me for {month}
give me my money back
where is my refund
when will I get my refund for {order}
my refund still hasn't arrived
I was charged twice
why was I charged twice in {month}
there is a charge of {amount} I don't recognise
you charged me {amount} but my plan is cheaper
why is my bill higher this month
I was charged after I cancelled
dispute a charge
I want to dispute the {amount} charge
reverse the charge from yesterday
show my invoices
send me invoice {invoice}
I need a copy of {invoice}
I need my invoice for {month}
can you email me a receipt for my last payment
what did I pay in {month}
how much do I owe
what's my balance
do I have unpaid invoices
is {invoice} paid
is my last invoice overdue
did my payment go through
my payment failed, can you check
my card was declined for the subscription
update my card on file
change my payment method to a new card
remove my old credit card from my account
when is my next payment due
when will I be charged next
how much will my next bill be
why is there a late fee on my account
I got billed for Pro but I'm on Plus
I need a VAT invoice for my company
change the billing address on my invoices
cancel the scheduled payment
charge me on the 1st instead of the 15th
I paid {amount} twice for the same order
I was promised a credit on my bill
apply my gift card balance to my invoice
my bank shows a pending charge from Halden
I need all my invoices from this year for taxes
the invoice amount doesn't match what my card was charged
I want a partial refund for the days the service was down
refund the duplicate payment
I returned the {item} {days} ago and still no money back
the {amount} charge on my statement is wrong
can I get the money back for {month}, I didn't use it
I'd like to know why my card was charged {amount}
my invoice for {month} shows the wrong plan
I think you billed me for two homes but I only have one
please stop charging my card
send the receipt for {order} to my email
pay my outstanding balance with the card on file
""".strip().splitlines()

# COMPLAINT: the point is dissatisfaction — a failed product, bad service, rude staff, waiting, threats to leave.
COMPLAINT = """
this is unacceptable, my {item} stopped working after {days}
your {item} is garbage
worst customer service I have ever had
I've been waiting {days} for an answer and nobody replies
nobody ever gets back to me
your support agent was rude to me
the delivery driver threw my package over the fence
I'm so disappointed with Halden
I regret buying your {item}
the app crashes all the time and I'm sick of it
your update broke my schedules again
I'm fed up with the {item} disconnecting every night
this is the third broken {item} you've sent me
you sent me a used {item}, disgraceful
I'm going to leave a one star review
I'll report you to consumer protection
I feel completely ignored
the installer damaged my wall
my complaint from last month was never resolved
your prices went up without warning, that's shady
I want to complain about how my case was handled
the camera missed a break-in, what is the point of it
this company is a joke
I've explained this problem five times already
I'm furious, the thermostat left my house freezing
every time I call I get a different answer
your chatbot is useless
the quality of the {item} is terrible
the night vision is blurry and useless, very disappointed
I'm losing patience with you people
shame on you for treating customers like this
this is a scam
I'm writing to express my dissatisfaction with your service
stop ignoring my emails
the {item} overheated and scared my kids
you keep promising a fix that never comes
honestly the worst purchase I've made this year
I'm really unhappy with the support I got yesterday
your outage made me lose a week of footage and no one apologised
I am extremely frustrated, the {item} has never worked properly
I've had it with this company
you ruined my weekend with your broken {item}
how is it possible that nobody can fix a simple problem
I waited in for the technician all day and nobody came
my {item} died and support just sends me links
absolutely appalling service from start to finish
the person on the phone hung up on me
I trusted your brand and you let me down
""".strip().splitlines()

# UNKNOWN: general knowledge, small talk, other companies, requests outside Halden support, gibberish.
UNKNOWN = """
how many calories are in {food}
what is the capital of {country}
what's the weather in {city} tomorrow
what time is it in {city}
who won the game last night
explain {topic} to me
tell me about {topic}
can you summarise {topic} in two lines
how do I make {thing}
how do I cook {dish}
what's a good recipe for {dish}
how long does {animal} live
how big is {animal}
what do {animal} eat
write me a poem about the sea
tell me a joke
sing me a song
what's your favourite movie
are you a real person or a bot
how are you today
good morning
hello there
hi
thanks bye
what's up
lol
ok
hmm
test
asdf jkl
can you do my homework
translate good night into Spanish
what's 15 percent of 80
what is 17 times 23
how far is the moon
why is the sky blue
who painted the Mona Lisa
who invented the telephone
recommend a good book
recommend a show to watch tonight
what's the best phone to buy
how do I fix a flat bike tire
how do I unclog a sink
how do I cancel my {company} subscription
my {company} app isn't working
what's the price of bitcoin
give me stock tips
book me a flight to {city}
order me a pizza
find me a plumber near me
how do I get rid of hiccups
is coffee bad for you
how many hours should I sleep
what's the population of {country}
what language do they speak in {country}
what year did the first moon landing happen
can dogs eat grapes
help me write a cover letter
write Python code to sort a list
what is the meaning of life
I'm bored
do you like music
what should I name my cat
is a tomato a fruit
how tall is Mount Everest
when does summer start
what's the speed of light
how do I change a car tyre
who wrote Pride and Prejudice
what's the tallest building in the world
how do airplanes stay in the air
can you tell me a fun fact about {animal}
what's a good name for a boat
which is bigger, {country} or {city}
where should I go on holiday in {country}
how do you say thank you in Japanese
why do cats purr
how many legs does {animal} have
is it going to rain today
what's on TV tonight
how do I lose weight fast
nice talking to you
you're funny
what are you
""".strip().splitlines()

TEMPLATES = {"FAQ": FAQ, "ACCOUNT_ACTION": ACCOUNT, "BILLING": BILLING, "COMPLAINT": COMPLAINT, "UNKNOWN": UNKNOWN}

# Sentences that set the scene without carrying an intent: put first, the intent is in the second sentence.
CONTEXT = [
    "Hi, I have a couple of your cameras and a doorbell at home.",
    "I've been a customer for about two years now.",
    "Hello, I hope you're having a good day.",
    "So I bought the starter kit back in the spring.",
    "We just moved into a new flat last weekend.",
    "Quick question before I go to work.",
    "I'm writing on behalf of my elderly father who uses your products.",
    "I use the Halden app on my phone most days.",
    "Sorry if this is the wrong place to ask.",
    "I tried looking on the website first but couldn't find it.",
    "My sister recommended Halden to me.",
    "This is my first time contacting support.",
    "I have the thermostat and a hub in a small house.",
    "Good afternoon.",
    "Long story short, I've been busy with work.",
    "I'm on my lunch break so I'll keep this short.",
]
POLITE_PRE = ["please ", "hi, ", "hello, ", "hey ", "good morning, ", "sorry to bother you, ", "excuse me, ",
              "could you help? ", "hi there! "]
POLITE_POST = [" please", " thanks", " thank you!", ", thanks in advance", ", much appreciated", " :)", " pls",
               " thx", ", cheers"]
ANGRY_POST = ["!!", "!!!", " right now", ", this is ridiculous", " asap", ". Seriously.", ", I'm tired of waiting",
              " and I'm not happy about it"]
SHORTHAND = {"you": "u", "your": "ur", "please": "pls", "thanks": "thx", "are": "r", "to": "2", "for": "4",
             "because": "bc", "I": "i", "don't": "dont", "can't": "cant", "what's": "whats", "where's": "wheres",
             "I'm": "im", "order": "ordr", "account": "acct", "subscription": "sub", "password": "pw"}
NO_STYLE = {"UNKNOWN"}  # small talk keeps its own shape (no "thanks" tacked on to "lol")


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 4 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        return word[:i] + word[i + 1:]  # dropped letter
    if kind == 1:
        return word[:i] + word[i] + word[i:]  # doubled letter
    if kind == 2:
        return word[:i - 1] + word[i] + word[i - 1] + word[i + 1:]  # swapped letters
    near = "qwertyuiopasdfghjklzxcvbnm"
    return word[:i] + near[(near.index(word[i].lower()) + 1) % 26] + word[i + 1:] if word[i].lower() in near else word


def noise(text: str, rng: random.Random, level: float) -> str:
    words = text.split(" ")
    out = []
    for w in words:
        if w in SHORTHAND and rng.random() < level:
            w = SHORTHAND[w]
        elif rng.random() < level * 0.5:
            w = _typo(w, rng)
        out.append(w)
    text = " ".join(out)
    if rng.random() < level:
        text = re.sub(r"[?.,!']", "", text)
    return text


def fill(template: str, rng: random.Random) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: rng.choice(SLOTS[m.group(1)]), template)


def styled(base: str, label: str, rng: random.Random) -> str:
    """One written-out variant of a filled template: case, context, politeness or anger, noise."""
    text = base
    if label not in NO_STYLE:
        roll = rng.random()
        if label == "COMPLAINT" and roll < 0.2:
            roll = 0.2 + roll / 2  # nobody says "thanks in advance" to a complaint: anger or context instead
        if label == "FAQ" and 0.2 <= roll < 0.35:
            roll = 0.4  # a general question rarely comes with "asap!!"
        if roll < 0.2:
            text = rng.choice(POLITE_PRE) + text + rng.choice(POLITE_POST)
        elif roll < 0.35:
            text = text + rng.choice(ANGRY_POST)
        elif roll < 0.5:
            text = rng.choice(CONTEXT) + " " + text[0].upper() + text[1:] + "?" * (text.split()[0].lower() in
                                                                                   ("how", "what", "where", "when",
                                                                                    "is", "do", "does", "can"))
    if rng.random() < 0.35:
        text = text[0].upper() + text[1:]
        if text[-1].isalnum():
            text += "?" if text.split()[0].lower() in ("how", "what", "where", "when", "is", "do", "does", "can",
                                                          "which", "who", "why") else "."
    if rng.random() < 0.1:
        text = text.upper() if label == "COMPLAINT" else text.lower()
    return noise(text, rng, rng.choice([0.0, 0.0, 0.1, 0.25]))


def splits_of(label: str, templates: list[str]) -> dict[str, str]:
    """Templates ordered by a hash, then cut 70/15/15 within the label: stratified and stable."""
    order = sorted(templates, key=lambda t: hashlib.sha256(f"{label}|{t}".encode()).hexdigest())
    n = len(order)
    return {t: "train" if i < round(n * 0.7) else "dev" if i < round(n * 0.85) else "test"
            for i, t in enumerate(order)}


def same_words(text: str) -> str:
    """What two messages share when they differ only in case, spacing or end punctuation."""
    return " ".join(text.lower().split()).strip(" ?!.")


def evaluated_messages() -> set[str]:
    return {same_words(json.loads(line)["text"]) for path in EVALUATED if path.is_file()
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def build() -> list[dict]:
    rows = [json.loads(line) for line in SEED.read_text(encoding="utf-8").splitlines() if line.strip()]
    seen = {r["text"].strip().lower() for r in rows}
    for label, templates in TEMPLATES.items():
        splits = splits_of(label, templates)
        for template in templates:
            rng = random.Random(f"{label}|{template}")
            split = splits[template]
            made = 0
            for _ in range(VARIANTS_PER_TEMPLATE * 4):
                if made >= VARIANTS_PER_TEMPLATE:
                    break
                text = " ".join(styled(fill(template, rng), label, rng).split())
                if not text or text.strip().lower() in seen:
                    continue
                seen.add(text.strip().lower())
                rows.append({"text": text, "label": label, "split": split, "template": template})
                made += 1
    for path, writer in EXTRA_TRAIN:
        for line in path.read_text(encoding="utf-8").splitlines():
            extra = json.loads(line) if line.strip() else None
            if extra and extra["text"].strip().lower() not in seen:
                seen.add(extra["text"].strip().lower())
                rows.append({"text": extra["text"], "label": extra["label"], "split": "train",
                             "template": f"{writer}, brief {extra['persona']}"})
    # The help centre's articles list the questions each one answers: FAQ by definition (LABELS.md), so they train.
    for article in load_articles():
        for question in article.questions:
            if question.strip().lower() not in seen:
                seen.add(question.strip().lower())
                rows.append({"text": question, "label": "FAQ", "split": "train",
                             "template": f"help-centre article {article.slug}"})
    held_out = evaluated_messages()
    return [r for r in rows if r["split"] != "train" or same_words(r["text"]) not in held_out]


def main(argv: list[str]) -> int:
    rows = build()
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if "--check" in argv:
        same = OUT.read_text(encoding="utf-8") == text
        print("up to date" if same else f"{OUT} differs from what the script makes")
        return 0 if same else 1
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {len(rows)} rows to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
