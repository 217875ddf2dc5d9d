"""The prose of the bundled document sample: ten short topics of plain English, split into sentences.

Documents of `pipelines.demo.documents_sample` take consecutive sentences of one topic: MMC4 rows as `text_list`,
OBELICS rows as paragraphs of a few sentences. No word of the topics is on OBELICS's spam list (`SPAM_WORDS` in
`pipelines.documents.presets`), so only `SPAM_PARAGRAPH` trips the spam rule.
"""

from __future__ import annotations

import re

TOPICS = {
    "garden": "We started our tomato seedlings indoors in early March, about eight weeks before the last frost. "
    "The seed trays sat on a heat mat near the south window, and most seeds sprouted within six days. "
    "Once the first true leaves appeared, each seedling moved into its own small pot of fresh compost. "
    "Tomatoes grow roots along any buried stem, so we planted them deeper than they sat in the tray. "
    "A gentle fan running for an hour each afternoon made the stems noticeably thicker. "
    "We watered from below to keep the leaves dry. "
    "In late April the plants spent a week outside during the day to harden off. "
    "By the middle of May they were ready for the raised beds, spaced about sixty centimetres apart. "
    "Basil and marigolds went in between the rows to attract bees and hoverflies. "
    "The first ripe cherry tomatoes arrived in early July, and the vines kept producing until October.",
    "coffee": "Brewing good coffee at home starts with beans that were roasted within the last few weeks. "
    "Grind the beans right before brewing, because ground coffee loses its aroma surprisingly quickly. "
    "For a pour-over we use fifteen grams of coffee for every two hundred and fifty grams of water. "
    "The water should be just off the boil, somewhere around ninety-three degrees Celsius. "
    "Start with a short bloom, pouring twice the weight of the coffee and waiting thirty seconds. "
    "Then pour slowly in small circles, keeping the bed of grounds evenly wet. "
    "If the cup tastes sour, try a finer grind; if it tastes bitter, go a little coarser. "
    "A cheap kitchen scale makes more difference than an expensive kettle. "
    "Keep the beans in an airtight tin away from light and heat.",
    "space": "The rocket rolled out to the launch pad two days before the planned liftoff. "
    "Engineers spent the night checking valves, sensors and the flight software one final time. "
    "Fuelling began about three hours before launch, with clouds of vapour drifting off the tanks. "
    "The countdown paused briefly at ten minutes while the range officer confirmed clear skies. "
    "At ignition the nine engines lit in sequence and the whole pad disappeared in white smoke. "
    "The first stage burned for about two and a half minutes before separating cleanly. "
    "Minutes later the booster turned around and headed back toward a landing barge at sea. "
    "The upper stage carried the satellite to a transfer orbit high above the equator. "
    "Crowds along the beach cheered when the sonic boom rolled over the coastline. "
    "Astronauts describe the ride as surprisingly smooth once the first minute is over.",
    "cat": "Our tabby cat Chelsea came home from the shelter when she was about two years old. "
    "For the first week she hid under the bed and only came out at night to eat. "
    "We kept the room quiet and sat nearby reading, without trying to pick her up. "
    "Slowly she began to approach us, sniffing our hands and then rubbing her cheek against them. "
    "She now spends most afternoons asleep on the windowsill in a patch of sunlight. "
    "A sisal scratching board near the sofa saved the furniture from her claws. "
    "We feed her two small meals a day and keep fresh water in a wide ceramic bowl. "
    "The vet says she is healthy, although she could lose a little weight before winter.",
    "bread": "A sourdough starter is simply flour and water colonised by wild yeast and bacteria. "
    "Ours took about ten days of daily feeding before it doubled reliably within six hours. "
    "For a basic loaf we mix five hundred grams of flour with three hundred and fifty grams of water. "
    "After an hour of rest we add the starter and salt, then squeeze the dough until it comes together. "
    "Over the next four hours we stretch and fold the dough every half hour. "
    "The dough is ready for shaping when it has grown by about half and feels airy. "
    "We shape a tight round, place it in a floured basket and leave it in the fridge overnight. "
    "The cold rest develops flavour and makes the loaf much easier to score. "
    "Bake it in a preheated cast iron pot, covered for twenty minutes and uncovered for twenty more. "
    "Let the bread cool completely before slicing, or the crumb will turn gummy.",
    "bike": "A clean and well oiled chain makes an old bicycle feel almost new. "
    "We wipe the chain with a rag after every wet ride and add a few drops of oil every few weeks. "
    "Tyre pressure matters more than most riders think, so check it before every longer trip. "
    "Road tyres usually need between five and seven bar, while wide gravel tyres run much softer. "
    "Brake pads wear faster in the rain and should be replaced before the grooves disappear. "
    "If the gears skip under load, the cable has probably stretched and needs a small adjustment. "
    "A basic toolkit with tyre levers, a patch kit and a multitool covers most roadside repairs. "
    "Once a year the bike goes to a workshop for new cables and a full inspection.",
    "hike": "We set off from the village car park just after sunrise, while the valley was still in shadow. "
    "The trail climbed steadily through pine forest for the first two hours. "
    "Above the tree line the path turned rocky, and small cairns marked the way across the scree. "
    "A pair of marmots whistled at us from a boulder near the lake. "
    "We stopped for lunch on a flat ledge with a view across three glaciers. "
    "The descent took longer than expected because the loose gravel was slippery. "
    "In total the loop covered eighteen kilometres with about eleven hundred metres of climbing.",
    "lisbon": "Lisbon is built on seven hills, so comfortable shoes are the most important thing to pack. "
    "The old yellow trams still climb the narrow streets of Alfama every few minutes. "
    "Tram twenty-eight is always crowded, so we walked its route early in the morning instead. "
    "The viewpoint at Santa Luzia looks over red roofs toward the wide river Tagus. "
    "In Belém we queued for custard tarts that were still warm from the oven. "
    "The monastery nearby took almost a century to build and is covered in carved stone ropes and shells. "
    "In the evening we heard fado in a tiny restaurant with only six tables. "
    "A day trip by train to Sintra brought us to colourful palaces hidden in misty forest. "
    "Three full days felt just right for a first visit to the city.",
    "birds": "Early spring is the best time to start birdwatching, before the trees are fully in leaf. "
    "A pair of eight by forty-two binoculars is light enough to carry all day. "
    "Learning the common birds in your own garden first makes rarer species easier to pick out. "
    "Blackbirds, robins and blue tits visited our feeder within a week of hanging it up. "
    "Bird song often gives away a species long before you manage to see it. "
    "At the wetland reserve a grey heron stood perfectly still for twenty minutes before striking. "
    "Swallows returned to the barn roof in the second week of April, right on schedule.",
    "photo": "Much of the best light for landscapes comes in the hour after sunrise or before sunset. "
    "The low sun brings out texture in rocks, bark and old brick walls. "
    "A tripod lets you use a low ISO and a slower shutter speed without blurring the picture. "
    "Place the horizon on the upper or lower third of the frame rather than through the middle. "
    "Roads, rivers and fences draw the eye deeper into the scene. "
    "When photographing people, focus on the nearest eye and keep the background simple. "
    "Shooting in raw format leaves far more room to correct exposure and colour later. "
    "Check the histogram instead of the screen, because screens look brighter outdoors. "
    "Two lenses are plenty for almost every trip. "
    "The best camera is still the one you carry with you every day.",
}
# Spam words from OBELICS's list: share, facebook, pinterest, subscribe, mailing, list: 6 of 19 words, ratio 0.316.
SPAM_PARAGRAPH = ("Share this recipe with your friends on Facebook and Pinterest, and subscribe to our mailing list "
                  "for new recipes.")


def sentences(topic: str) -> list[str]:
    """The topic's text split into sentences."""
    return re.split(r"(?<=[.!?])\s+", TOPICS[topic].strip())


def paragraph(topic: str, start: int, stop: int) -> str:
    """Sentences `start:stop` of the topic joined into one paragraph."""
    return " ".join(sentences(topic)[start:stop])
