"""The fixed vocabulary of the demo retailer: names, places, phone plans, the product catalogue and the texts of
service notes. Plain tuples, so that the generator draws from them deterministically.

Every name, street and city here is an ordinary one; no real person is described.
"""

# --- countries ----------------------------------------------------------------------------------------------------
# code, weight, locale, note language (call-center notes are written in German or English), e-mail domains.
COUNTRIES = (
    ("DE", 52, "de-DE", "de", ("gmx.de", "web.de", "t-online.de", "gmail.com", "outlook.de", "yahoo.de", "posteo.de",
                               "freenet.de", "icloud.com")),
    ("AT", 14, "de-AT", "de", ("gmx.at", "aon.at", "gmail.com", "chello.at", "outlook.com", "a1.net")),
    ("CH", 10, "de-CH", "de", ("bluewin.ch", "gmx.ch", "gmail.com", "hispeed.ch", "sunrise.ch", "outlook.com")),
    ("NL", 8, "nl-NL", "en", ("ziggo.nl", "kpnmail.nl", "gmail.com", "hotmail.nl", "outlook.com")),
    ("FR", 8, "fr-FR", "en", ("orange.fr", "free.fr", "gmail.com", "laposte.net", "sfr.fr", "outlook.fr")),
    ("GB", 8, "en-GB", "en", ("gmail.com", "btinternet.com", "hotmail.co.uk", "outlook.com", "yahoo.co.uk")),
)

# How the CRM spells a country (the file is typed by hand, so it varies).
COUNTRY_SPELLINGS = {
    "DE": ("DE", "DE", "DE", "Deutschland", "Germany", "D", "de"),
    "AT": ("AT", "AT", "Österreich", "Austria", "A", "Oesterreich"),
    "CH": ("CH", "CH", "Schweiz", "Switzerland", "CH"),
    "NL": ("NL", "NL", "Niederlande", "Netherlands", "Nederland"),
    "FR": ("FR", "FR", "Frankreich", "France"),
    "GB": ("GB", "GB", "UK", "United Kingdom", "Großbritannien"),
}

# --- names ----------------------------------------------------------------------------------------------------------
# First names per language group: (female, male). Formal forms; NICKNAMES gives the short forms people also use.
FIRST_NAMES = {
    "de": (
        ("Anna", "Maria", "Katharina", "Elisabeth", "Sophie", "Laura", "Julia", "Lena", "Sarah", "Hannah", "Lea",
         "Johanna", "Christina", "Stefanie", "Susanne", "Sabine", "Petra", "Monika", "Claudia", "Andrea", "Nicole",
         "Sandra", "Birgit", "Ursula", "Margarete", "Franziska", "Theresa", "Magdalena", "Jülide", "Özlem", "Jana",
         "Carina", "Verena", "Barbara", "Gabriele", "Renate", "Ines", "Miriam", "Nadine", "Jessica"),
        ("Johannes", "Maximilian", "Alexander", "Michael", "Thomas", "Andreas", "Stefan", "Christian", "Matthias",
         "Markus", "Tobias", "Florian", "Sebastian", "Daniel", "Lukas", "Jonas", "Felix", "Paul", "Jürgen", "Günter",
         "Wolfgang", "Klaus", "Friedrich", "Wilhelm", "Heinrich", "Bernhard", "Dominik", "Patrick", "Philipp",
         "Benedikt", "Jörg", "Uwe", "Ralf", "Frank", "Martin", "Simon", "David", "Niklas", "Mehmet", "Luca"),
    ),
    "nl": (
        ("Anouk", "Sanne", "Femke", "Lotte", "Eva", "Lieke", "Marieke", "Inge", "Sophie", "Emma", "Fleur", "Noor"),
        ("Daan", "Bram", "Sem", "Lars", "Thijs", "Ruben", "Jeroen", "Pieter", "Maarten", "Joost", "Willem", "Luuk"),
    ),
    "fr": (
        ("Camille", "Chloé", "Léa", "Manon", "Élise", "Céline", "Amélie", "Sophie", "Julie", "Margaux", "Inès",
         "Hélène"),
        ("Louis", "Hugo", "Lucas", "Théo", "Nicolas", "Julien", "Antoine", "Mathieu", "Pierre", "Guillaume",
         "François", "Jérôme"),
    ),
    "en": (
        ("Emily", "Olivia", "Charlotte", "Jessica", "Sophie", "Elizabeth", "Katherine", "Jennifer", "Rebecca",
         "Hannah", "Lucy", "Margaret"),
        ("James", "William", "Oliver", "Thomas", "Robert", "Daniel", "Matthew", "Edward", "Christopher", "George",
         "Harry", "Jonathan"),
    ),
}

LAST_NAMES = {
    "de": ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
           "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann",
           "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt", "Werner", "Schmitz", "Krause", "Meier",
           "Lehmann", "Schmid", "Schulze", "Maier", "Köhler", "Herrmann", "König", "Walter", "Mayer", "Huber",
           "Kaiser", "Fuchs", "Peters", "Lang", "Scholz", "Möller", "Weiß", "Jung", "Hahn", "Schubert", "Vogel",
           "Friedrich", "Keller", "Günther", "Frank", "Berger", "Winkler", "Roth", "Beck", "Lorenz", "Baumann",
           "Franke", "Albrecht", "Schuster", "Simon", "Ludwig", "Böhm", "Winter", "Kraus", "Martin", "Schumacher",
           "Krämer", "Vogt", "Stein", "Jäger", "Otto", "Sommer", "Groß", "Seidel", "Heinrich", "Brandt", "Haas",
           "Schreiber", "Graf", "Schulte", "Dietrich", "Ziegler", "Kuhn", "Kühn", "Pohl", "Engel", "Horn", "Busch",
           "Bergmann", "Thomas", "Voigt", "Sauer", "Arnold", "Wolff", "Pfeiffer", "Gruber", "Pichler", "Steiner",
           "Moser", "Hofer", "Leitner", "Egger", "Brunner", "Lechner", "Haider", "Baumgartner", "Aigner", "Wimmer",
           "Meili", "Keller", "Gerber", "Brunner", "Frei", "Zürcher", "Bühler", "Ammann", "Graf", "Blaser",
           "Yılmaz", "Kaya", "Nowak", "Kowalski", "Öztürk"),
    "nl": ("de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Janssen", "Visser", "Smit",
           "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks", "van Leeuwen", "Dekker",
           "Brouwer"),
    "fr": ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
           "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier",
           "Girard", "Bonnet", "Dupont", "Lambert", "Fontaine", "Rousseau", "Mercier", "Müller", "Schneider"),
    "en": ("Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Thomas", "Johnson",
           "Roberts", "Robinson", "Thompson", "Wright", "Walker", "White", "Edwards", "Hughes", "Green", "Hall",
           "Lewis", "Harris", "Clarke", "Patel", "Jackson", "Wood", "Turner", "Martin", "Cooper", "Hill"),
}

NAME_GROUP = {"DE": "de", "AT": "de", "CH": "de", "NL": "nl", "FR": "fr", "GB": "en"}

# Formal first name -> the short forms people give at the counter or on the phone.
NICKNAMES = {
    "Johannes": ("Hans", "Jo"), "Katharina": ("Kathi", "Katja"), "Elisabeth": ("Lisa", "Sisi", "Elli"),
    "Margarete": ("Grete", "Margit"), "Friedrich": ("Fritz",), "Wilhelm": ("Willi",), "Heinrich": ("Heinz",),
    "Maximilian": ("Max",), "Alexander": ("Alex",), "Christian": ("Chris",), "Michael": ("Micha",),
    "Andreas": ("Andi",), "Matthias": ("Matze",), "Stefanie": ("Steffi",), "Susanne": ("Susi",),
    "Thomas": ("Tom", "Tommy"), "Franziska": ("Franzi",), "Theresa": ("Resi",), "Magdalena": ("Lena",),
    "Christina": ("Tina",), "Gabriele": ("Gabi",), "Barbara": ("Babsi",), "Bernhard": ("Bernd",),
    "Sebastian": ("Basti",), "Tobias": ("Tobi",), "Dominik": ("Dome",), "Benedikt": ("Bene",),
    "Johanna": ("Hanna",), "Wolfgang": ("Wolf",), "Ursula": ("Uschi",),
    "William": ("Bill", "Will"), "Robert": ("Bob", "Rob"), "Katherine": ("Kate", "Kathy"),
    "Jennifer": ("Jenny",), "Elizabeth": ("Liz", "Beth"), "Margaret": ("Maggie",), "Christopher": ("Chris",),
    "Matthew": ("Matt",), "Edward": ("Ed", "Ted"), "Jonathan": ("Jon",), "Daniel": ("Dan",),
    "Nicolas": ("Nico",), "Guillaume": ("Guy",), "Rebecca": ("Becky",), "Pieter": ("Piet",), "Willem": ("Wim",),
}

# --- places ---------------------------------------------------------------------------------------------------------
# country -> (city, postcodes)
CITIES = {
    "DE": (("Berlin", ("10115", "10437", "10827", "12043", "13347")), ("Hamburg", ("20095", "20357", "22087")),
           ("München", ("80331", "80469", "81667", "80797")), ("Köln", ("50667", "50733", "50937")),
           ("Frankfurt am Main", ("60311", "60316", "60594")), ("Stuttgart", ("70173", "70176", "70199")),
           ("Düsseldorf", ("40210", "40477")), ("Leipzig", ("04109", "04275")), ("Dortmund", ("44135", "44137")),
           ("Essen", ("45127", "45130")), ("Bremen", ("28195", "28203")), ("Dresden", ("01067", "01099")),
           ("Hannover", ("30159", "30161")), ("Nürnberg", ("90402", "90429")), ("Freiburg im Breisgau", ("79098",)),
           ("Münster", ("48143", "48149")), ("Augsburg", ("86150",)), ("Regensburg", ("93047",)),
           ("Würzburg", ("97070",)), ("Kiel", ("24103",)), ("Mainz", ("55116",)), ("Heidelberg", ("69117",)),
           ("Bonn", ("53111",)), ("Karlsruhe", ("76133",)), ("Göttingen", ("37073",)), ("Lübeck", ("23552",))),
    "AT": (("Wien", ("1010", "1020", "1070", "1150", "1190")), ("Graz", ("8010", "8020")), ("Linz", ("4020",)),
           ("Salzburg", ("5020",)), ("Innsbruck", ("6020",)), ("Klagenfurt", ("9020",)), ("St. Pölten", ("3100",)),
           ("Dornbirn", ("6850",))),
    "CH": (("Zürich", ("8001", "8004", "8050")), ("Bern", ("3011", "3013")), ("Basel", ("4051", "4056")),
           ("Luzern", ("6003",)), ("St. Gallen", ("9000",)), ("Winterthur", ("8400",)), ("Zug", ("6300",))),
    "NL": (("Amsterdam", ("1012 AB", "1071 XX", "1091 GH")), ("Rotterdam", ("3011 AD", "3024 EA")),
           ("Utrecht", ("3511 LN", "3581 KP")), ("Den Haag", ("2511 BT",)), ("Eindhoven", ("5611 EM",))),
    "FR": (("Paris", ("75001", "75011", "75015")), ("Lyon", ("69001", "69003")), ("Strasbourg", ("67000",)),
           ("Lille", ("59000",)), ("Marseille", ("13001",)), ("Bordeaux", ("33000",)), ("Nantes", ("44000",))),
    "GB": (("London", ("SW1A 1AA", "E1 6AN", "N1 9GU", "SE1 7PB")), ("Manchester", ("M1 1AE", "M4 5JD")),
           ("Birmingham", ("B1 1BB",)), ("Bristol", ("BS1 4DJ",)), ("Leeds", ("LS1 4AP",)),
           ("Edinburgh", ("EH1 1YZ",))),
}

STREETS = {
    "de": ("Hauptstraße", "Bahnhofstraße", "Schillerstraße", "Goethestraße", "Gartenstraße", "Bergstraße",
           "Lindenstraße", "Kirchstraße", "Schulstraße", "Waldstraße", "Ringstraße", "Mozartstraße",
           "Friedrichstraße", "Am Markt", "Rosenweg", "Birkenweg", "Lindenweg", "Mühlweg", "Kirchgasse",
           "Tulpenweg", "Poststraße", "Marktplatz", "Bachstraße", "Feldstraße", "Dorfstraße", "Wiesenweg",
           "Uferstraße", "Grabenstraße", "Seestraße", "Sonnenallee"),
    "nl": ("Kerkstraat", "Dorpsstraat", "Molenweg", "Stationsweg", "Schoolstraat", "Julianastraat",
           "Prinsengracht", "Lindenlaan", "Beukenlaan", "Nieuwstraat"),
    "fr": ("rue de la République", "rue Victor Hugo", "avenue Jean Jaurès", "rue de la Gare", "rue Pasteur",
           "boulevard Voltaire", "rue des Lilas", "place de l'Église", "rue du Moulin", "avenue de Paris"),
    "en": ("High Street", "Station Road", "Church Lane", "Victoria Road", "Green Lane", "Manor Road",
           "Park Avenue", "Queens Road", "Mill Lane", "King Street"),
}

# Mobile numbers, as (E.164 country prefix, national mobile prefixes (without the trunk 0), subscriber digits).
# Every number of these plans is valid (checked with phonenumbers in the tests); seven or more subscriber digits
# keep the numbers unique for up to ten million people.
MOBILE_PLANS = {
    "DE": ("+49", (("151", 8), ("152", 8), ("157", 8), ("160", 7), ("170", 8), ("171", 8), ("172", 8), ("175", 8),
                   ("176", 8), ("177", 8), ("178", 8), ("179", 8))),
    "AT": ("+43", (("664", 7), ("660", 7), ("676", 7), ("699", 8), ("650", 7))),
    "CH": ("+41", (("79", 7), ("78", 7), ("76", 7), ("77", 7))),
    "NL": ("+31", (("61", 7), ("62", 7), ("63", 7), ("64", 7), ("65", 7), ("68", 7))),
    "FR": ("+33", (("61", 7), ("62", 7), ("64", 7), ("65", 7), ("66", 7), ("67", 7), ("68", 7), ("75", 7), ("76", 7),
                   ("77", 7), ("78", 7))),
    "GB": ("+44", (("740", 7), ("750", 7), ("780", 7), ("790", 7), ("771", 7), ("745", 7), ("795", 7))),
}

# Company domains, for the other e-mail address people give the CRM (work, old account).
WORK_DOMAINS = ("firma-mueller.de", "stadtwerke-nord.de", "kanzlei-berger.de", "example-gmbh.de", "bau-huber.at",
                "praxis-lang.ch", "agentur-roth.de", "schule-am-see.de", "consulting-wolf.de", "technik-ag.ch")

# --- devices --------------------------------------------------------------------------------------------------------
USER_AGENTS = (
    ("desktop", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/124.0.0.0 Safari/537.36"),
    ("desktop", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                "Version/17.4 Safari/605.1.15"),
    ("desktop", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0"),
    ("mobile", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
               "Version/17.4 Mobile/15E148 Safari/604.1"),
    ("mobile", "Mozilla/5.0 (Linux; Android 14; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
               "Chrome/124.0.0.0 Mobile Safari/537.36"),
    ("tablet", "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
               "Version/17.4 Mobile/15E148 Safari/604.1"),
)

SHOP_HOST = "https://www.example-shop.eu"
REFERRERS = ("https://www.google.com/", "https://www.google.de/", "https://www.bing.com/", "https://www.instagram.com/",
             "https://www.facebook.com/", "https://www.idealo.de/", "", "", "")

# --- catalogue ------------------------------------------------------------------------------------------------------
# Interests are groups of products bought together. Each product: (product id, name, category, price in EUR,
# consumable: bought again). The first number of an interest is its popularity weight.
INTERESTS = (
    ("running", 14, (
        ("P1001", "Laufschuh Aero Run 3", "sports/shoes", 129.95, False),
        ("P1002", "Laufsocken Merino 3er-Pack", "sports/apparel", 19.95, True),
        ("P1003", "GPS-Sportuhr Pace 2", "electronics/wearables", 249.00, False),
        ("P1004", "Trinkflasche Isoliert 0,75 l", "sports/accessories", 24.95, False),
        ("P1005", "Laufjacke Windbreaker", "sports/apparel", 89.95, False),
        ("P1006", "Energiegel Mix 12 Stück", "sports/nutrition", 21.50, True),
    )),
    ("coffee", 12, (
        ("P2001", "Siebträgermaschine Barista Pro", "kitchen/appliances", 549.00, False),
        ("P2002", "Espressobohnen Crema 1 kg", "food/coffee", 18.90, True),
        ("P2003", "Milchaufschäumer Edelstahl", "kitchen/appliances", 69.95, False),
        ("P2004", "Entkalker Flüssig 2er-Pack", "household/cleaning", 12.95, True),
        ("P2005", "Kaffeemühle Kegelmahlwerk", "kitchen/appliances", 129.00, False),
        ("P2006", "Cappuccino-Tassen 4er-Set", "home/tableware", 34.95, False),
    )),
    ("outdoor", 10, (
        ("P3001", "Wanderschuh Alpin GTX", "outdoor/shoes", 179.95, False),
        ("P3002", "Regenjacke 3-Lagen", "outdoor/apparel", 229.00, False),
        ("P3003", "Tagesrucksack 28 l", "outdoor/bags", 99.95, False),
        ("P3004", "Thermoskanne 1 l", "outdoor/accessories", 34.95, False),
        ("P3005", "Wandersocken 2er-Pack", "outdoor/apparel", 22.95, True),
        ("P3006", "Stirnlampe 400 lm", "outdoor/accessories", 39.95, False),
    )),
    ("home", 9, (
        ("P4001", "Bettwäsche Satin 135x200", "home/textiles", 59.95, False),
        ("P4002", "Kopfkissen Daunen 80x80", "home/textiles", 79.95, False),
        ("P4003", "Handtuch-Set Frottee 6-teilig", "home/textiles", 44.95, False),
        ("P4004", "Duftkerze Zeder", "home/decor", 16.95, True),
        ("P4005", "Kuscheldecke Strick", "home/textiles", 49.95, False),
        ("P4006", "Spannbettlaken Jersey", "home/textiles", 24.95, True),
    )),
    ("kitchen", 8, (
        ("P5001", "Pfanne Gusseisen 28 cm", "kitchen/cookware", 89.00, False),
        ("P5002", "Kochmesser Damast 20 cm", "kitchen/knives", 119.00, False),
        ("P5003", "Schneidebrett Eiche", "kitchen/accessories", 39.95, False),
        ("P5004", "Topfset Edelstahl 5-teilig", "kitchen/cookware", 199.00, False),
        ("P5005", "Gewürzmühle 2er-Set", "kitchen/accessories", 29.95, False),
        ("P5006", "Olivenöl Extra Vergine 1 l", "food/pantry", 14.90, True),
    )),
    ("beauty", 9, (
        ("P6001", "Gesichtscreme Hyaluron 50 ml", "beauty/skincare", 29.95, True),
        ("P6002", "Serum Vitamin C 30 ml", "beauty/skincare", 34.95, True),
        ("P6003", "Reinigungsschaum 150 ml", "beauty/skincare", 14.95, True),
        ("P6004", "Parfum Eau de Toilette 50 ml", "beauty/fragrance", 59.00, False),
        ("P6005", "Haarshampoo Repair 250 ml", "beauty/haircare", 9.95, True),
        ("P6006", "Sonnencreme LSF 50", "beauty/skincare", 17.95, True),
    )),
    ("kids", 7, (
        ("P7001", "Holzeisenbahn Starterset", "kids/toys", 59.95, False),
        ("P7002", "Bilderbuch Der kleine Fuchs", "kids/books", 14.95, False),
        ("P7003", "Puzzle 100 Teile Bauernhof", "kids/toys", 12.95, False),
        ("P7004", "Kinder-Regenjacke", "kids/apparel", 39.95, False),
        ("P7005", "Malstifte 24 Farben", "kids/toys", 9.95, True),
        ("P7006", "Kinderrucksack Igel", "kids/bags", 29.95, False),
    )),
    ("grill", 6, (
        ("P8001", "Kugelgrill 57 cm", "garden/grill", 249.00, False),
        ("P8002", "Grillzange Edelstahl", "garden/grill", 19.95, False),
        ("P8003", "Grillbriketts 10 kg", "garden/grill", 16.95, True),
        ("P8004", "Grillhandschuhe", "garden/grill", 24.95, False),
        ("P8005", "Gewürzmischung BBQ", "food/pantry", 7.95, True),
        ("P8006", "Abdeckhaube Grill", "garden/grill", 29.95, False),
    )),
    ("tech", 9, (
        ("P9001", "Kopfhörer Noise Cancelling", "electronics/audio", 199.00, False),
        ("P9002", "USB-C Ladegerät 65 W", "electronics/accessories", 39.95, False),
        ("P9003", "Smartphone-Hülle Leder", "electronics/accessories", 29.95, False),
        ("P9004", "Bluetooth-Lautsprecher Mini", "electronics/audio", 79.95, False),
        ("P9005", "Powerbank 20.000 mAh", "electronics/accessories", 49.95, False),
        ("P9006", "Displayschutzfolie 2er-Pack", "electronics/accessories", 12.95, True),
    )),
    ("fashion", 11, (
        ("P1101", "Jeans Slim Fit", "fashion/trousers", 79.95, False),
        ("P1102", "T-Shirt Bio-Baumwolle", "fashion/shirts", 19.95, True),
        ("P1103", "Ledergürtel Braun", "fashion/accessories", 39.95, False),
        ("P1104", "Sneaker Weiß", "fashion/shoes", 99.95, False),
        ("P1105", "Strickpullover Wolle", "fashion/knitwear", 89.95, False),
        ("P1106", "Socken 5er-Pack", "fashion/underwear", 14.95, True),
    )),
)

# --- e-mail campaigns -----------------------------------------------------------------------------------------------
CAMPAIGN_KINDS = (
    ("newsletter", "Newsletter"),
    ("promo", "Aktion der Woche"),
    ("season", "Saisonstart"),
    ("reactivation", "Wir vermissen Sie"),
)

# --- call-center notes ----------------------------------------------------------------------------------------------
# kind -> language -> templates. {order}, {days}, {product} and the words of NOTE_GENDER_WORDS are filled in.
NOTES = {
    "cancel": {
        "de": (
            "{Kunde} möchte kündigen, unzufrieden mit Lieferzeit.",
            "{Kunde} möchte {seine} Mitgliedschaft kündigen, die Lieferung kam zum dritten Mal zu spät.",
            "{Kunde} droht mit Kündigung, Rückerstattung zu Bestellung {order} seit {days} Tagen offen. Sehr "
            "verärgert.",
            "Kündigungswunsch: {Kunde} ist enttäuscht von der Qualität ({product}) und will das Kundenkonto löschen.",
            "{Kunde} will das Plus-Abo kündigen, findet die Versandkosten zu hoch und den Service schlecht.",
            "{Kunde} ruft zum zweiten Mal an, will kündigen. Paket {order} nie angekommen, niemand hat sich gemeldet.",
            "{Kunde} kündigt die Kundenkarte zum Monatsende, ist zur Konkurrenz gewechselt.",
        ),
        "en": (
            "Customer intends to cancel their membership.",
            "Customer wants to cancel, unhappy with delivery times.",
            "Customer is very disappointed, refund for order {order} still open after {days} days. Wants to close "
            "the account.",
            "Caller asked how to cancel the Plus subscription, says shipping costs are too high and service is poor.",
            "Customer will cancel the loyalty card at the end of the month, has switched to a competitor.",
            "Second call this week: parcel {order} never arrived, customer angry and wants to cancel.",
        ),
    },
    "complaint": {
        "de": (
            "{Kunde} beschwert sich über beschädigte Ware ({product}), Ersatz veranlasst.",
            "Paket {order} seit {days} Tagen nicht angekommen, {kunde} verärgert.",
            "Falscher Artikel geliefert, {kunde} unzufrieden. Retoure angelegt.",
            "Betrag für Bestellung {order} doppelt abgebucht, {kunde} sehr ärgerlich. An Buchhaltung weitergeleitet.",
            "{Kunde} enttäuscht: {product} nach zwei Wochen defekt. Gutschrift angeboten.",
            "Lieferung unvollständig, {kunde} genervt von der langen Warteschleife.",
        ),
        "en": (
            "Parcel damaged on arrival ({product}), customer upset. Replacement sent.",
            "Order {order} late by {days} days, customer unhappy.",
            "Wrong item delivered, customer frustrated. Return label sent.",
            "Customer complains about being charged twice for order {order}. Escalated to billing.",
            "Customer disappointed, {product} broke after two weeks. Offered a voucher.",
        ),
    },
    "neutral": {
        "de": (
            "Adressänderung durchgeführt.",
            "{Kunde} fragt nach dem Lieferstatus von Bestellung {order}. Auskunft gegeben.",
            "Rückfrage zur Rechnung, geklärt.",
            "{Kunde} bittet um Beratung zu {product}. Infos per E-Mail geschickt.",
            "Passwort zurückgesetzt auf Wunsch {des_kunden}.",
            "{Kunde} fragt nach der Rücksendefrist, 30 Tage genannt.",
        ),
        "en": (
            "Customer asked about the delivery status of order {order}. Tracking link sent.",
            "Address updated at the customer's request.",
            "Question about the invoice, clarified.",
            "Customer asked for advice on {product}. Sent details by email.",
            "Password reset requested and done.",
        ),
    },
    "praise": {
        "de": (
            "{Kunde} bedankt sich für die schnelle Lieferung, sehr zufrieden.",
            "{Kunde} lobt die freundliche Beratung, super Service!",
            "{Kunde} begeistert von {product}, empfiehlt uns weiter.",
            "{Kunde} bedankt sich für die unkomplizierte Rückerstattung. Alles bestens.",
        ),
        "en": (
            "Customer thanked us for the quick refund, very happy.",
            "Customer loves the {product}, great service, will recommend us.",
            "Customer called to say thanks for the fast delivery. Excellent experience.",
        ),
    },
}

# The words of German notes that follow the customer's gender: (female, male).
NOTE_GENDER_WORDS = {
    "Kunde": ("Kundin", "Kunde"), "kunde": ("Kundin", "Kunde"), "seine": ("ihre", "seine"),
    "des_kunden": ("der Kundin", "des Kunden"),
}

NOTE_SUBJECTS = {
    "cancel": ("Kündigung", "Cancellation"),
    "complaint": ("Reklamation", "Complaint"),
    "neutral": ("Anfrage", "Enquiry"),
    "praise": ("Feedback", "Feedback"),
}
