"""Fine-tune a model: `python train.py [recipe=lora] [model=tiny] [data=sample] [key=value ...]`.

`python train.py --help` lists the config groups and their options.
"""

from gatetune.cli import main

if __name__ == "__main__":
    main()
