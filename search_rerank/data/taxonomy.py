"""The product world the synthetic generator draws from.

Written as data, not code, so a reader can see what makes the benchmark hard:
several names per product type (the synonym gap BM25 cannot cross),
accessories whose names contain another type's name ("sofa slipcover",
"lamp shade": lexical traps), types that share words across departments
("coffee table" / "coffee maker"), and shopper intents that name no product
at all (the gap dense retrieval is for). Brands and model numbers are
invented, so no pretrained model has seen them (the gap BM25 is for).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProductType:
    key: str
    path: tuple[str, ...]  # department > ... > display name
    names: tuple[str, ...]  # surface forms; the first is the usual one
    materials: tuple[str, ...]
    features: tuple[str, ...]
    sizes: tuple[str, ...]
    rooms: tuple[str, ...]
    price: tuple[float, float]
    intents: tuple[str, ...] = ()
    related: tuple[str, ...] = ()  # a related type that meets every constraint is a partial match
    pairs_with: tuple[str, ...] = field(default=())  # named in descriptions: lexical noise

    @property
    def department(self) -> str:
        return self.path[0]


COLOURS = (
    "black", "white", "grey", "beige", "brown", "navy", "blue", "green",
    "red", "yellow", "pink", "orange", "cream", "charcoal", "teal", "gold",
)
STYLES = (
    "modern", "mid-century", "scandinavian", "industrial", "rustic", "farmhouse",
    "traditional", "coastal", "boho", "minimalist", "contemporary", "vintage",
)
SIZE_GENERIC = ("small", "medium", "large")

_T = ProductType
TYPES: tuple[ProductType, ...] = (
    # --- Furniture
    _T("sofa", ("Furniture", "Living Room", "Sofas"), ("sofa", "couch", "settee"),
       ("leather", "velvet", "linen", "faux leather", "microfiber"), ("reclining", "sleeper", "storage", "usb charging"),
       ("2-seater", "3-seater", "4-seater"), ("living room", "family room"), (299, 2499),
       ("somewhere comfy for the whole family to sit", "seating for the living room", "big comfy seat to watch tv on"),
       ("loveseat", "sectional"), ("coffee_table", "throw_blanket")),
    _T("loveseat", ("Furniture", "Living Room", "Loveseats"), ("loveseat", "love seat", "two-seater"),
       ("leather", "velvet", "linen", "microfiber"), ("reclining", "storage"), SIZE_GENERIC,
       ("living room", "apartment"), (199, 1299),
       ("something to sit on in a small flat", "seat for two in a tiny apartment"), ("sofa", "armchair"), ("rug",)),
    _T("sectional", ("Furniture", "Living Room", "Sectionals"), ("sectional sofa", "corner sofa", "l-shaped couch"),
       ("leather", "velvet", "linen", "faux leather"), ("reclining", "sleeper", "storage chaise", "reversible"),
       ("5-seater", "6-seater", "7-seater"), ("living room", "basement"), (699, 3999),
       ("huge seating for a big family room",), ("sofa",), ("coffee_table",)),
    _T("armchair", ("Furniture", "Living Room", "Chairs"), ("armchair", "accent chair", "lounge chair"),
       ("velvet", "linen", "leather", "boucle", "rattan"), ("swivel", "rocking", "reclining"), SIZE_GENERIC,
       ("living room", "bedroom", "reading nook"), (129, 999),
       ("comfortable chair for reading", "cozy seat for a reading corner"), ("loveseat", "office_chair"), ("floor_lamp",)),
    _T("coffee_table", ("Furniture", "Living Room", "Tables"), ("coffee table", "cocktail table", "centre table"),
       ("oak", "walnut", "marble", "glass", "metal"), ("lift-top", "storage", "nesting"), SIZE_GENERIC,
       ("living room",), (79, 899), ("low table to put in front of the sofa",), (), ("sofa", "sectional")),
    _T("bookcase", ("Furniture", "Living Room", "Storage"), ("bookcase", "bookshelf", "shelving unit"),
       ("oak", "pine", "walnut", "metal", "engineered wood"), ("adjustable shelves", "glass doors", "ladder design"),
       ("3-shelf", "5-shelf", "6-shelf"), ("living room", "office", "kids room"), (59, 699),
       ("somewhere to keep all my books", "place to display books and plants"), ("tv_stand",), ("armchair",)),
    _T("tv_stand", ("Furniture", "Living Room", "Media"), ("tv stand", "media console", "entertainment center"),
       ("oak", "walnut", "engineered wood", "metal", "glass"), ("cable management", "led lights", "storage cabinets"),
       ("for tvs up to 55 inches", "for tvs up to 65 inches", "for tvs up to 75 inches"), ("living room", "bedroom"),
       (89, 999), ("furniture to put the television on",), ("bookcase",), ("television",)),
    _T("dining_table", ("Furniture", "Dining Room", "Tables"), ("dining table", "kitchen table", "dinner table"),
       ("oak", "walnut", "marble", "glass", "pine"), ("extendable", "drop-leaf", "round top"),
       ("4-person", "6-person", "8-person"), ("dining room", "kitchen"), (149, 1999),
       ("table for family dinners",), ("dining_chair",), ("dining_chair", "table_runner")),
    _T("dining_chair", ("Furniture", "Dining Room", "Chairs"), ("dining chair", "kitchen chair", "side chair"),
       ("oak", "velvet", "metal", "rattan", "plastic"), ("stackable", "upholstered seat", "set of 2", "set of 4"),
       SIZE_GENERIC, ("dining room", "kitchen"), (49, 499), ("chairs to go around the dinner table",),
       ("dining_table", "armchair"), ("dining_table",)),
    _T("bed_frame", ("Furniture", "Bedroom", "Beds"), ("bed frame", "platform bed", "bedstead"),
       ("oak", "metal", "velvet", "pine", "linen"), ("storage drawers", "headboard", "no box spring needed"),
       ("twin", "full", "queen", "king"), ("bedroom", "guest room"), (149, 1899),
       ("something to put the mattress on", "a new bed for the guest room"), ("mattress",), ("nightstand",)),
    _T("dresser", ("Furniture", "Bedroom", "Storage"), ("dresser", "chest of drawers", "bureau"),
       ("oak", "walnut", "pine", "engineered wood"), ("soft-close drawers", "anti-tip kit", "mirror"),
       ("3-drawer", "6-drawer", "8-drawer"), ("bedroom", "nursery"), (129, 1499),
       ("storage for clothes in the bedroom",), ("nightstand",), ("bed_frame",)),
    _T("nightstand", ("Furniture", "Bedroom", "Tables"), ("nightstand", "bedside table", "night table"),
       ("oak", "walnut", "pine", "metal", "rattan"), ("usb charging", "drawer", "open shelf"), SIZE_GENERIC,
       ("bedroom", "guest room"), (39, 499), ("small table next to the bed",), ("dresser",), ("table_lamp",)),
    _T("office_desk", ("Furniture", "Office", "Desks"), ("desk", "writing desk", "computer desk"),
       ("oak", "walnut", "metal", "glass", "engineered wood"), ("standing", "adjustable height", "drawers", "l-shaped"),
       ("40 inch", "48 inch", "60 inch"), ("office", "bedroom"), (89, 1299),
       ("somewhere to work from home", "workspace for my laptop"), ("office_chair",), ("office_chair",)),
    _T("office_chair", ("Furniture", "Office", "Chairs"), ("office chair", "desk chair", "task chair"),
       ("mesh", "leather", "faux leather", "fabric"), ("lumbar support", "adjustable armrests", "ergonomic", "headrest"),
       SIZE_GENERIC, ("office",), (69, 899), ("chair good for my back when working", "comfortable chair for long work days"),
       ("armchair",), ("office_desk",)),
    # --- Kitchen
    _T("frying_pan", ("Kitchen", "Cookware", "Pans"), ("frying pan", "skillet", "fry pan"),
       ("cast iron", "stainless steel", "non-stick aluminium", "carbon steel", "copper"),
       ("induction compatible", "oven safe", "dishwasher safe"), ("8 inch", "10 inch", "12 inch"), ("kitchen",),
       (19, 199), ("pan to cook eggs in",), ("saucepan",), ("knife_set",)),
    _T("saucepan", ("Kitchen", "Cookware", "Pots"), ("saucepan", "sauce pot", "cooking pot"),
       ("stainless steel", "non-stick aluminium", "copper", "enamel cast iron"), ("glass lid", "induction compatible", "dishwasher safe"),
       ("1 quart", "2 quart", "3 quart"), ("kitchen",), (19, 179), ("pot for making soup",), ("frying_pan",), ()),
    _T("knife_set", ("Kitchen", "Cutlery", "Knives"), ("knife set", "knife block", "chef knives"),
       ("stainless steel", "german steel", "damascus steel", "ceramic"), ("sharpener included", "wooden block", "dishwasher safe"),
       ("6-piece", "12-piece", "15-piece"), ("kitchen",), (29, 399), ("something to chop vegetables with",), (), ("frying_pan",)),
    _T("coffee_maker", ("Kitchen", "Appliances", "Coffee"), ("coffee maker", "coffee machine", "espresso machine"),
       ("stainless steel", "plastic", "glass"), ("programmable", "built-in grinder", "milk frother", "thermal carafe"),
       ("single serve", "8-cup", "12-cup"), ("kitchen", "office"), (29, 899),
       ("machine to make my morning latte", "something to brew coffee at home"), ("kettle",), ()),
    _T("blender", ("Kitchen", "Appliances", "Blenders"), ("blender", "smoothie maker", "food blender"),
       ("glass", "plastic", "stainless steel"), ("cordless", "personal cup", "pulse mode", "crushes ice"),
       ("20 oz", "48 oz", "64 oz"), ("kitchen",), (25, 499), ("machine for making smoothies",), (), ()),
    _T("kettle", ("Kitchen", "Appliances", "Kettles"), ("electric kettle", "kettle", "water boiler"),
       ("stainless steel", "glass", "plastic"), ("temperature control", "keep warm", "auto shut-off"),
       ("1 litre", "1.7 litre"), ("kitchen", "office"), (19, 149), ("something to boil water for tea",), ("coffee_maker",), ()),
    _T("toaster", ("Kitchen", "Appliances", "Toasters"), ("toaster", "bread toaster", "toaster oven"),
       ("stainless steel", "plastic"), ("wide slots", "bagel setting", "defrost"), ("2-slice", "4-slice"), ("kitchen",),
       (19, 249), ("something to brown bread for breakfast",), (), ()),
    _T("dinnerware", ("Kitchen", "Tableware", "Dinnerware"), ("dinnerware set", "dish set", "plate set"),
       ("porcelain", "stoneware", "bone china", "melamine"), ("microwave safe", "dishwasher safe", "chip resistant"),
       ("12-piece", "16-piece", "32-piece"), ("dining room", "kitchen"), (29, 299), ("plates and bowls for the family",),
       (), ("table_runner",)),
    # --- Lighting
    _T("floor_lamp", ("Lighting", "Lamps", "Floor Lamps"), ("floor lamp", "standing lamp", "arc lamp"),
       ("metal", "brass", "wood", "rattan"), ("dimmable", "smart bulb", "reading light", "foot switch"),
       ("58 inch", "65 inch", "72 inch"), ("living room", "bedroom", "reading nook"), (39, 499),
       ("light for a dark corner", "tall light to read by"), ("table_lamp",), ("lamp_shade", "armchair")),
    _T("table_lamp", ("Lighting", "Lamps", "Table Lamps"), ("table lamp", "bedside lamp", "desk lamp"),
       ("ceramic", "brass", "glass", "metal", "wood"), ("dimmable", "usb port", "touch control"), SIZE_GENERIC,
       ("bedroom", "living room", "office"), (19, 299), ("small light for my nightstand",), ("floor_lamp",),
       ("lamp_shade", "nightstand")),
    _T("pendant_light", ("Lighting", "Ceiling Lights", "Pendants"), ("pendant light", "hanging lamp", "ceiling pendant"),
       ("glass", "metal", "rattan", "brass"), ("dimmable", "adjustable cord", "smart bulb"), SIZE_GENERIC,
       ("kitchen", "dining room", "hallway"), (29, 599), ("light to hang above the kitchen island",),
       ("chandelier",), ("dining_table",)),
    _T("chandelier", ("Lighting", "Ceiling Lights", "Chandeliers"), ("chandelier", "crystal chandelier", "candle chandelier"),
       ("crystal", "brass", "iron", "glass"), ("dimmable", "adjustable height", "6 lights"), SIZE_GENERIC,
       ("dining room", "foyer", "bedroom"), (99, 1999), ("fancy light for the dining room",), ("pendant_light",), ()),
    _T("wall_sconce", ("Lighting", "Wall Lights", "Sconces"), ("wall sconce", "wall light", "wall lamp"),
       ("brass", "metal", "glass", "wood"), ("plug-in", "hardwired", "dimmable", "swing arm"), SIZE_GENERIC,
       ("bedroom", "hallway", "bathroom"), (25, 349), ("light on the wall beside the bed",), ("table_lamp",), ()),
    _T("lamp_shade", ("Lighting", "Accessories", "Lamp Shades"), ("lamp shade", "lampshade", "replacement shade"),
       ("linen", "fabric", "paper", "rattan"), ("drum shape", "empire shape", "spider fitter"), SIZE_GENERIC,
       ("living room", "bedroom"), (12, 89), (), (), ("floor_lamp", "table_lamp")),
    # --- Bath
    _T("bath_towel", ("Bath", "Towels", "Bath Towels"), ("bath towel", "towel set", "bath sheet"),
       ("cotton", "egyptian cotton", "turkish cotton", "bamboo"), ("quick dry", "oeko-tex certified", "extra absorbent"),
       ("set of 2", "set of 4", "set of 6"), ("bathroom",), (15, 129), ("soft towels for after a shower",),
       ("bath_mat",), ("shower_curtain",)),
    _T("shower_curtain", ("Bath", "Shower", "Curtains"), ("shower curtain", "shower liner", "bath curtain"),
       ("polyester", "cotton", "vinyl", "linen"), ("waterproof", "mildew resistant", "hooks included"),
       ("72 inch", "extra long"), ("bathroom",), (9, 79), ("something to keep water in the shower",), ("curtains",), ()),
    _T("bath_mat", ("Bath", "Bath Rugs", "Mats"), ("bath mat", "bathroom rug", "shower mat"),
       ("cotton", "memory foam", "bamboo", "microfiber"), ("non-slip", "machine washable", "quick dry"), SIZE_GENERIC,
       ("bathroom",), (9, 69), ("soft rug for the bathroom floor",), ("rug", "bath_towel"), ()),
    _T("vanity", ("Bath", "Bathroom Furniture", "Vanities"), ("bathroom vanity", "vanity unit", "sink cabinet"),
       ("oak", "engineered wood", "marble", "ceramic"), ("soft-close doors", "undermount sink", "backsplash"),
       ("24 inch", "36 inch", "48 inch"), ("bathroom",), (199, 1999), ("cabinet with a sink for the bathroom",),
       ("mirror",), ("mirror",)),
    _T("mirror", ("Bath", "Mirrors", "Wall Mirrors"), ("wall mirror", "bathroom mirror", "vanity mirror"),
       ("glass", "brass", "wood", "metal"), ("led backlit", "anti-fog", "frameless", "round"), SIZE_GENERIC,
       ("bathroom", "hallway", "bedroom"), (29, 599), ("something to check my outfit in",), ("vanity",), ()),
    # --- Outdoor
    _T("patio_set", ("Outdoor", "Patio Furniture", "Dining Sets"), ("patio dining set", "outdoor dining set", "garden furniture set"),
       ("wicker", "teak", "aluminium", "acacia", "resin"), ("weather resistant", "cushions included", "umbrella hole"),
       ("4-person", "6-person", "8-person"), ("patio", "garden", "balcony"), (199, 2999),
       ("table and chairs for eating outside",), ("sun_lounger",), ("parasol",)),
    _T("sun_lounger", ("Outdoor", "Patio Furniture", "Loungers"), ("sun lounger", "chaise lounge", "pool lounger"),
       ("wicker", "teak", "aluminium", "resin"), ("adjustable backrest", "wheels", "cushion included"), SIZE_GENERIC,
       ("patio", "pool", "garden"), (79, 899), ("somewhere to lie in the sun by the pool",), ("patio_set", "hammock"), ()),
    _T("parasol", ("Outdoor", "Shade", "Umbrellas"), ("patio umbrella", "parasol", "sun umbrella"),
       ("polyester", "olefin", "aluminium"), ("tilt", "crank lift", "solar led lights", "uv protection"),
       ("7.5 ft", "9 ft", "11 ft"), ("patio", "garden", "pool"), (39, 599), ("shade for the garden table",), (),
       ("patio_set",)),
    _T("grill", ("Outdoor", "Cooking", "Grills"), ("grill", "barbecue", "bbq"),
       ("stainless steel", "cast iron", "porcelain steel"), ("gas", "charcoal", "pellet", "side burner"),
       ("2-burner", "3-burner", "4-burner"), ("patio", "garden"), (99, 1999), ("something to cook burgers outside",), (), ()),
    _T("hammock", ("Outdoor", "Patio Furniture", "Hammocks"), ("hammock", "hammock chair", "swing bed"),
       ("cotton", "polyester", "rope"), ("stand included", "portable", "spreader bar"), ("single", "double"),
       ("garden", "patio", "camping"), (29, 399), ("something to relax in between two trees",), ("sun_lounger",), ()),
    _T("planter", ("Outdoor", "Garden", "Planters"), ("planter", "plant pot", "flower pot"),
       ("ceramic", "terracotta", "concrete", "plastic", "metal"), ("drainage hole", "self-watering", "saucer included"),
       SIZE_GENERIC, ("garden", "patio", "living room"), (9, 199), ("pot for my houseplants",), ("vase",), ()),
    # --- Bedding & textiles
    _T("duvet", ("Bedding", "Bed Covers", "Duvets"), ("duvet", "comforter", "quilt"),
       ("down", "down alternative", "cotton", "wool", "silk"), ("all-season", "hypoallergenic", "machine washable", "cooling"),
       ("twin", "full", "queen", "king"), ("bedroom",), (39, 499), ("warm cover for the bed in winter",),
       ("sheet_set", "throw_blanket"), ("pillow",)),
    _T("pillow", ("Bedding", "Pillows", "Bed Pillows"), ("bed pillow", "pillow", "sleeping pillow"),
       ("memory foam", "down", "down alternative", "latex"), ("cooling", "adjustable loft", "hypoallergenic", "side sleeper"),
       ("standard", "queen", "king"), ("bedroom",), (15, 149), ("something soft to rest my head on at night",), (),
       ("duvet",)),
    _T("sheet_set", ("Bedding", "Sheets", "Sheet Sets"), ("sheet set", "bed sheets", "bedding set"),
       ("cotton", "egyptian cotton", "linen", "bamboo", "microfiber"), ("deep pocket", "wrinkle resistant", "cooling"),
       ("twin", "full", "queen", "king"), ("bedroom",), (25, 299), ("fresh sheets for the bed",), ("duvet",), ()),
    _T("throw_blanket", ("Bedding", "Blankets", "Throws"), ("throw blanket", "throw", "blanket"),
       ("fleece", "wool", "cotton", "faux fur", "chenille"), ("machine washable", "reversible", "tassels", "heated"),
       ("50x60 inch", "60x80 inch"), ("living room", "bedroom"), (15, 199), ("something warm for movie nights on the sofa",),
       ("duvet",), ("sofa",)),
    _T("rug", ("Bedding", "Rugs", "Area Rugs"), ("area rug", "rug", "carpet"),
       ("wool", "jute", "cotton", "polypropylene"), ("machine washable", "non-slip backing", "low pile", "shag"),
       ("5x7 ft", "8x10 ft", "9x12 ft"), ("living room", "bedroom", "dining room"), (39, 1499),
       ("something soft to cover the floor",), ("bath_mat",), ("sofa", "coffee_table")),
    _T("curtains", ("Bedding", "Window", "Curtains"), ("curtains", "drapes", "window panels"),
       ("linen", "velvet", "polyester", "cotton"), ("blackout", "thermal insulated", "grommet top", "sheer"),
       ("63 inch", "84 inch", "96 inch"), ("living room", "bedroom"), (19, 199), ("something to block the light from the window",),
       ("shower_curtain",), ()),
    _T("slipcover", ("Bedding", "Furniture Covers", "Slipcovers"), ("sofa slipcover", "couch cover", "sofa cover"),
       ("polyester", "cotton", "velvet", "spandex"), ("stretch fit", "machine washable", "pet friendly", "waterproof"),
       ("for 2-seater", "for 3-seater", "for sectional"), ("living room",), (19, 129),
       ("protect my couch from the dog",), (), ("sofa",)),
    _T("mattress", ("Bedding", "Mattresses", "Mattresses"), ("mattress", "memory foam mattress", "spring mattress"),
       ("memory foam", "latex", "hybrid", "innerspring"), ("cooling gel", "medium firm", "plush", "edge support"),
       ("twin", "full", "queen", "king"), ("bedroom", "guest room"), (149, 2499), ("something comfortable to sleep on",),
       ("mattress_topper", "bed_frame"), ("bed_frame",)),
    _T("mattress_topper", ("Bedding", "Mattresses", "Toppers"), ("mattress topper", "mattress pad", "bed topper"),
       ("memory foam", "down alternative", "latex", "wool"), ("cooling gel", "waterproof", "deep pocket"),
       ("twin", "full", "queen", "king"), ("bedroom",), (29, 399), ("make my old bed softer",), ("mattress",), ("mattress",)),
    # --- Electronics
    _T("headphones", ("Electronics", "Audio", "Headphones"), ("headphones", "headset", "earbuds"),
       ("plastic", "aluminium", "leather"), ("noise cancelling", "wireless", "bluetooth", "microphone"), ("over-ear", "on-ear", "in-ear"),
       ("office", "travel"), (19, 499), ("something to listen to music on the train",), ("speaker",), ()),
    _T("speaker", ("Electronics", "Audio", "Speakers"), ("bluetooth speaker", "portable speaker", "wireless speaker"),
       ("plastic", "aluminium", "fabric"), ("waterproof", "voice assistant", "long battery life", "bluetooth"),
       SIZE_GENERIC, ("living room", "outdoor", "kitchen"), (19, 399), ("play music at a beach party",),
       ("headphones",), ()),
    _T("television", ("Electronics", "TV & Video", "Televisions"), ("television", "smart tv", "tv"),
       ("plastic", "aluminium"), ("4k", "hdr", "oled", "voice remote"), ("43 inch", "55 inch", "65 inch", "75 inch"),
       ("living room", "bedroom"), (199, 2999), ("big screen for watching films",), (), ("tv_stand",)),
    _T("robot_vacuum", ("Electronics", "Home Appliances", "Vacuums"), ("robot vacuum", "robotic vacuum cleaner", "robot hoover"),
       ("plastic",), ("self-emptying", "mopping", "app control", "pet hair"), ("slim", "standard"),
       ("living room", "kitchen"), (129, 1299), ("something to clean the floors automatically",), (), ("rug",)),
    _T("air_purifier", ("Electronics", "Home Appliances", "Air Quality"), ("air purifier", "air cleaner", "hepa purifier"),
       ("plastic", "metal"), ("hepa filter", "quiet mode", "air quality sensor", "app control"), SIZE_GENERIC,
       ("bedroom", "living room", "office"), (49, 799), ("help with allergies at home",), (), ()),
    # --- Decor & storage
    _T("wall_clock", ("Decor", "Clocks", "Wall Clocks"), ("wall clock", "clock", "kitchen clock"),
       ("wood", "metal", "glass", "plastic"), ("silent movement", "oversized", "roman numerals"), SIZE_GENERIC,
       ("kitchen", "living room", "office"), (15, 249), ("something on the wall to tell the time",), (), ()),
    _T("picture_frame", ("Decor", "Wall Decor", "Frames"), ("picture frame", "photo frame", "frame"),
       ("wood", "metal", "glass", "acrylic"), ("gallery set", "mat included", "tabletop stand"), ("4x6", "5x7", "8x10", "11x14"),
       ("living room", "hallway", "bedroom"), (9, 149), ("display family photos",), (), ()),
    _T("storage_basket", ("Decor", "Storage", "Baskets"), ("storage basket", "wicker basket", "storage bin"),
       ("wicker", "seagrass", "cotton rope", "felt", "metal"), ("handles", "lid", "collapsible", "set of 3"), SIZE_GENERIC,
       ("living room", "bedroom", "kids room", "bathroom"), (9, 99), ("somewhere to put the kids toys",), (), ()),
    _T("vase", ("Decor", "Accents", "Vases"), ("vase", "flower vase", "bud vase"),
       ("ceramic", "glass", "terracotta", "metal"), ("handmade", "set of 3", "waterproof"), SIZE_GENERIC,
       ("living room", "dining room"), (9, 199), ("something to put fresh flowers in",), ("planter",), ("dining_table",)),
    _T("candle", ("Decor", "Candles", "Candles"), ("scented candle", "candle", "pillar candle"),
       ("soy wax", "beeswax", "paraffin", "coconut wax"), ("long burning", "wooden wick", "gift set"), SIZE_GENERIC,
       ("living room", "bathroom", "bedroom"), (9, 79), ("something to make the room smell nice",), (), ()),
    _T("coat_rack", ("Decor", "Entryway", "Coat Racks"), ("coat rack", "coat stand", "hall tree"),
       ("metal", "oak", "bamboo", "pine"), ("shoe bench", "umbrella holder", "wall mounted"), SIZE_GENERIC,
       ("hallway", "entryway"), (19, 299), ("somewhere to hang jackets by the door",), (), ()),
    _T("table_runner", ("Decor", "Table Linen", "Runners"), ("table runner", "table cloth", "tablecloth"),
       ("linen", "cotton", "jute", "polyester"), ("stain resistant", "machine washable", "tassels"), ("72 inch", "90 inch", "108 inch"),
       ("dining room",), (9, 59), ("make the dinner table look nice",), (), ("dining_table",)),
)

TYPE_BY_KEY = {t.key: t for t in TYPES}

# Intents that span several types: the query names a need, not a product.
SHARED_INTENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("places to sit in the living room", ("sofa", "loveseat", "sectional", "armchair")),
    ("furniture for a small flat", ("loveseat", "armchair", "nightstand")),
    ("everything for a cosy bed", ("duvet", "pillow", "sheet_set", "mattress_topper")),
    ("outdoor furniture for summer", ("patio_set", "sun_lounger", "hammock")),
    ("home office setup", ("office_desk", "office_chair")),
    ("lighting for the bedroom", ("table_lamp", "wall_sconce", "floor_lamp")),
    ("small kitchen appliances", ("kettle", "toaster", "blender", "coffee_maker")),
    ("gift for a new home", ("candle", "vase", "picture_frame", "throw_blanket")),
)

# Syllables for invented brand names: no pretrained model knows these.
BRAND_STARTS = ("Nor", "Oak", "Bel", "Ash", "Kin", "Hal", "Mar", "Sol", "Vel", "Lun", "Bri", "Tor",
                "Cal", "Dun", "Fen", "Gry", "Hav", "Ivo", "Jes", "Kel")
BRAND_ENDS = ("haven", "ridge", "wick", "moor", "field", "stone", "lane", "brook", "dale", "forge", "vale", "mere")
