"""The fixed sentence set of the quality bench: 64 sentences written for this project.

Layout:
- 24 paraphrase pairs, one topic per pair (sentences 2k and 2k+1 say the same thing in other words);
- 16 single sentences, some on a pair's topic but saying something different (hard negatives),
  some on topics of their own, and a few with punctuation, numbers, accents and rare words to
  exercise the tokenizer.

``PARAPHRASE_PAIRS`` lists the paraphrase index pairs. ``UNRELATED_PAIRS`` pairs the first sentence of
pair k with the first sentence of pair k+12 (mod 24): every topic below differs from the topic
twelve pairs away, so those pairs share no meaning.
"""
from __future__ import annotations

_PAIRS: list[tuple[str, str, str]] = [
    ("weather", "It is raining heavily in the city this afternoon.",
     "A downpour is soaking the town right now."),
    ("cooking", "Boil the pasta for ten minutes before draining it.",
     "Cook the noodles in boiling water for about ten minutes, then pour off the water."),
    ("finance", "The central bank raised interest rates by half a percentage point.",
     "Borrowing costs went up 0.5% after the central bank's decision."),
    ("sport", "The home team won the match in the final minute.",
     "A last-minute goal gave the local side the victory."),
    ("computing", "My laptop crashes every time I open the video editor.",
     "The video editing program makes my notebook computer freeze and shut down."),
    ("health", "Drinking enough water helps prevent headaches.",
     "Staying hydrated can keep headaches away."),
    ("travel", "Our flight to Lisbon was delayed by three hours.",
     "The plane to Lisbon left three hours late."),
    ("pets", "The cat is sleeping on the warm windowsill.",
     "A kitten naps in the sun by the window."),
    ("music", "She has played the violin since she was six years old.",
     "She began learning the violin at the age of six."),
    ("astronomy", "Jupiter is the largest planet in our solar system.",
     "No planet orbiting the Sun is bigger than Jupiter."),
    ("gardening", "Water the tomato plants early in the morning.",
     "Tomatoes should be watered at dawn."),
    ("history", "The Roman Empire split into eastern and western halves.",
     "Rome's empire was divided into an East and a West."),
    ("shopping", "The store offers a discount on all winter coats.",
     "Winter jackets are on sale at the shop."),
    ("education", "The students must submit their essays by Friday.",
     "Essays are due from the pupils at the end of the week, on Friday."),
    ("transport", "The train to the airport leaves every fifteen minutes.",
     "Airport trains depart four times an hour."),
    ("programming", "This function returns the sum of a list of integers.",
     "The routine adds up all the numbers in an integer list and gives back the total."),
    ("medicine", "The doctor prescribed antibiotics for the infection.",
     "To treat the infection, the physician gave her antibiotics."),
    ("law", "The court ruled that the contract was invalid.",
     "Judges decided the agreement had no legal force."),
    ("cinema", "The film was too long and the plot was confusing.",
     "The movie dragged on and its story was hard to follow."),
    ("ocean", "Whales migrate thousands of kilometres every year.",
     "Each year whales travel enormous distances across the seas."),
    ("housing", "Rents in the capital have doubled over the last decade.",
     "Over ten years, the cost of renting in the capital has gone up twofold."),
    ("energy", "Solar panels on the roof now supply most of our electricity.",
     "Most of the house's power comes from the photovoltaic panels on top."),
    ("chemistry", "Water is made of two hydrogen atoms and one oxygen atom.",
     "A molecule of H2O contains two atoms of hydrogen and a single oxygen atom."),
    ("work", "The meeting has been moved to Tuesday morning.",
     "We rescheduled the meeting for Tuesday before noon."),
]

_SINGLES: list[str] = [
    "It never rains in the desert during the summer.",             # weather, different claim
    "The central bank kept interest rates unchanged.",             # finance, opposite event
    "The home team lost badly in front of its fans.",              # sport, opposite outcome
    "Dogs need to be walked at least twice a day.",                # pets, different animal
    "Saturn's rings are made mostly of ice.",                      # astronomy, other planet
    "The recipe calls for 200 g of flour, 2 eggs and a pinch of salt.",
    "Quantum computers use qubits that can be in superposition.",
    "The museum is closed on Mondays and public holidays.",
    "Crème brûlée is a dessert with a caramelised sugar crust.",
    "How do I reset my password if I forgot my e-mail address?",
    "The bridge was built in 1889 and renovated in 2004.",
    "Photosynthesis converts sunlight, water and CO2 into sugar.",
    "Please turn off your phones during the performance.",
    "Antidisestablishmentarianism is a famously long English word.",
    "The volcano erupted, covering nearby villages in ash.",
    "A good night's sleep improves memory and concentration.",
]

SENTENCES: tuple[str, ...] = tuple(
    [s for _, a, b in _PAIRS for s in (a, b)] + _SINGLES
)
TOPICS: tuple[str, ...] = tuple(t for t, _, _ in _PAIRS)
PARAPHRASE_PAIRS: tuple[tuple[int, int], ...] = tuple((2 * k, 2 * k + 1) for k in range(len(_PAIRS)))
UNRELATED_PAIRS: tuple[tuple[int, int], ...] = tuple(
    (2 * k, 2 * ((k + len(_PAIRS) // 2) % len(_PAIRS))) for k in range(len(_PAIRS) // 2)
)

assert len(SENTENCES) == 64, len(SENTENCES)
assert len(set(SENTENCES)) == len(SENTENCES)
